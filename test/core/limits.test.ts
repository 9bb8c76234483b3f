// Bounded work per request, in the core: pods beyond sane sizes are denied unread (fail closed)
// with the field and the limit; answers cite a bounded number of violations and say how many more;
// one violation's text is cut; the image-verdict cache keeps a bounded number of short keys.

import t from 'tap';
import { BoundedCache } from '../../src/core/cache.js';
import {
  denyMessage,
  evaluate,
  formatFieldPath,
  warnings,
  type AdmissionRequest,
} from '../../src/core/index.js';
import { MAX_CITED_VIOLATIONS, MAX_VIOLATION_TEXT } from '../../src/core/messages.js';
import { POD_LIMITS } from '../../src/core/pod.js';
import { pod, podSpec, requestFor } from '../helpers/requests.js';
import { ruleSet } from '../helpers/rules.js';

const RULES = ruleSet([
  { name: 'no-privileged', check: 'privileged' },
  { name: 'trusted', check: 'trustedRegistries', params: { registries: ['registry.k8s.io'] } },
]);

const container = (i: number, extra: Record<string, unknown> = {}) => ({
  name: `c${i}`,
  image: 'registry.k8s.io/pause:3.10',
  ...extra,
});
const many = (n: number, extra: Record<string, unknown> = {}) =>
  Array.from({ length: n }, (_, i) => container(i, extra));

function deployment(spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { template: { spec } } };
}

t.test('pods beyond the limits are denied unread, naming the field and the limit', async (t) => {
  const rows: [name: string, request: AdmissionRequest, field: string | undefined, message?: string][] = [
    [
      'a million empty containers',
      requestFor('Pod', pod(podSpec({ containers: Array.from({ length: 1_000_000 }, () => ({})) }))),
      'spec.containers',
      'brings the pod to 1000000 containers: Portcullis judges at most 256 in one pod (init, regular and ephemeral together)',
    ],
    [
      'init, regular and ephemeral containers count together',
      requestFor(
        'Pod',
        pod(podSpec({ initContainers: many(200), containers: many(50), ephemeralContainers: many(7) })),
      ),
      'spec.ephemeralContainers',
      'brings the pod to 257 containers: Portcullis judges at most 256 in one pod (init, regular and ephemeral together)',
    ],
    [
      'in a pod template',
      requestFor('Deployment', deployment({ containers: many(POD_LIMITS.containers + 1) })),
      'spec.template.spec.containers',
    ],
    [
      'volumes',
      requestFor(
        'Pod',
        pod(podSpec({ volumes: Array.from({ length: 513 }, (_, i) => ({ name: `v${i}`, emptyDir: {} })) })),
      ),
      'spec.volumes',
      'holds 513 volumes: Portcullis judges at most 512 in one pod',
    ],
    [
      'ports, over all containers',
      requestFor(
        'Pod',
        pod(
          podSpec({
            containers: many(3, { ports: Array.from({ length: 400 }, (_, p) => ({ containerPort: p + 1 })) }),
          }),
        ),
      ),
      'spec.containers[2].ports',
      'brings the pod to 1200 ports: Portcullis judges at most 1024 in one pod',
    ],
    [
      'volume mounts of one container',
      requestFor(
        'Pod',
        pod(
          podSpec({
            containers: [
              container(0, {
                volumeMounts: Array.from({ length: 513 }, () => ({ name: 'v', mountPath: '/v' })),
              }),
            ],
          }),
        ),
      ),
      'spec.containers[0].volumeMounts',
      'holds 513 volume mounts: Portcullis judges at most 512 in one container',
    ],
    // Distractors: exactly at each limit is judged as usual, and ports that are not a list are not
    // this reader's to refuse (no check reads them).
    [
      'exactly the limits',
      requestFor(
        'Pod',
        pod(
          podSpec({
            containers: many(POD_LIMITS.containers, {
              ports: [{ containerPort: 1 }, { containerPort: 2 }, { containerPort: 3 }, { containerPort: 4 }],
            }),
            volumes: Array.from({ length: POD_LIMITS.volumes }, (_, i) => ({ name: `v${i}`, emptyDir: {} })),
          }),
        ),
      ),
      undefined,
    ],
    [
      'ports not a list',
      requestFor('Pod', pod(podSpec({ containers: [container(0, { ports: 'many' })] }))),
      undefined,
    ],
  ];
  for (const [name, request, field, message] of rows) {
    const decision = evaluate(request, RULES);
    if (field === undefined) {
      t.same(decision, { allowed: true, violations: [], rulesApplied: ['no-privileged', 'trusted'] }, name);
      continue;
    }
    t.equal(decision.allowed, false, `${name}: denied`);
    t.equal(formatFieldPath(decision.malformed?.path ?? []), field, `${name}: the field`);
    if (message !== undefined)
      t.equal(denyMessage(decision), `object is malformed: ${field} ${message}`, name);
  }
});

t.test(
  'a deny message cites at most 20 violations, every rule at least once, and counts the rest',
  async (t) => {
    const containers = [
      ...many(240, { securityContext: { privileged: true } }),
      container(240, { image: 'evil.example/x' }),
    ];
    const decision = evaluate(requestFor('Pod', pod(podSpec({ containers }))), RULES);
    t.equal(decision.violations.length, 241, 'every violation is still in the decision (the CLI lists them)');
    const message = denyMessage(decision) ?? '';
    const parts = message.split('; ');
    t.equal(parts.length, MAX_CITED_VIOLATIONS + 1);
    t.equal(parts[0], 'container "c0": securityContext.privileged must not be true [no-privileged]');
    t.equal(
      parts[MAX_CITED_VIOLATIONS - 1],
      'container "c240": image "evil.example/x" is not from a trusted registry [trusted]',
      'the second rule is cited although its violation comes 241st',
    );
    t.equal(parts.at(-1), 'and 221 more');
    t.ok(message.length < 4096, `the message is ${message.length} characters`);

    const few = evaluate(
      requestFor('Pod', pod(podSpec({ containers: many(3, { securityContext: { privileged: true } }) }))),
      RULES,
    );
    t.notMatch(denyMessage(few), /more/, 'no count when everything is cited (distractor)');
  },
);

t.test('warnings are capped the same way', async (t) => {
  const warnRules = ruleSet([{ name: 'no-privileged', check: 'privileged', action: 'warn' }]);
  const decision = evaluate(
    requestFor('Pod', pod(podSpec({ containers: many(100, { securityContext: { privileged: true } }) }))),
    warnRules,
  );
  const sent = warnings(decision);
  t.equal(sent.length, MAX_CITED_VIOLATIONS + 1);
  t.equal(sent.at(-1), 'and 80 more warnings');
});

t.test("one violation's text is cut: an image string can be as long as the object", async (t) => {
  const image = `evil.example/${'a'.repeat(100_000)}`;
  const decision = evaluate(
    requestFor('Pod', pod(podSpec({ containers: [container(0, { image })] }))),
    RULES,
  );
  const message = denyMessage(decision) ?? '';
  t.equal(message, `${decision.violations[0]?.message.slice(0, MAX_VIOLATION_TEXT)}… [trusted]`);
  t.match(message, /^container "c0": image "evil\.example\/aaaa/);
});

t.test('the image-verdict cache keeps a bounded number of short keys', async (t) => {
  const cache = new BoundedCache<number>(4, 10);
  let computed = 0;
  const length = (key: string) => {
    computed += 1;
    return key.length;
  };
  for (const key of ['a', 'bb', 'a', 'ccc', 'a']) cache.get(key, length);
  t.equal(computed, 3, 'a repeated key is computed once');
  for (let i = 0; i < 100; i++) {
    t.equal(cache.get(`k${i}`, length), `k${i}`.length, 'the value is right after any number of clears');
    t.ok(cache.size <= 4, 'never more entries than the bound');
  }
  const huge = 'x'.repeat(11);
  const before = cache.size;
  t.equal(cache.get(huge, length), 11);
  t.equal(cache.size, before, 'a key longer than the bound is not kept');
  const again = computed;
  cache.get(huge, length);
  t.equal(computed, again + 1, 'so it is computed each time');

  // Through the check: more distinct images than the cache holds, then one seen before, judged alike.
  const judged = (image: string) =>
    evaluate(requestFor('Pod', pod(podSpec({ containers: [container(0, { image })] }))), RULES).allowed;
  for (let i = 0; i < 1500; i++) judged(`registry.k8s.io/img-${i}:1`);
  t.equal(judged('registry.k8s.io/img-3:1'), true);
  t.equal(judged('ghcr.io/img-3:1'), false, 'untrusted still untrusted after the cache was cleared');
});
