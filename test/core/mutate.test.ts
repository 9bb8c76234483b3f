// mutate(request, ruleset): RuntimeDefault at pod level for pods whose containers would end up with
// no seccomp profile. The patch must apply to the object as sent, be idempotent, and never
// overwrite an explicit profile.

import jsonpatch from 'fast-json-patch';
import t from 'tap';
import {
  evaluate,
  mutate,
  type AdmissionRequest,
  type CompiledRuleSet,
  type PatchOperation,
} from '../../src/core/index.js';
import { pod, POD_SPEC_PATHS, requestFor, type RequestOptions } from '../helpers/requests.js';
import { ruleSet } from '../helpers/rules.js';

const IMAGE = 'registry.k8s.io/pause:3.10';

const RULES = ruleSet([{ name: 'require-seccomp', check: 'seccomp' }], { namespaces: ['kube-system'] });
const NONE = { patch: [], rules: [] };
const RUNTIME_DEFAULT = { type: 'RuntimeDefault' };

const c = (name: string, type?: string) => ({
  name,
  image: IMAGE,
  ...(type === undefined ? {} : { securityContext: { seccompProfile: { type } } }),
});

/** An object of `kind` with `spec` as its pod spec, as kubectl would send it. */
function objectOf(kind: string, spec: Record<string, unknown>): Record<string, unknown> {
  const specPath = POD_SPEC_PATHS.find(([k]) => k === kind)?.[1] ?? [];
  const nested = specPath.reduceRight<Record<string, unknown>>((inner, key) => ({ [key]: inner }), spec);
  return { apiVersion: 'v1', kind, metadata: { name: 'x', namespace: 'default' }, ...nested };
}

function apply(object: unknown, patch: readonly PatchOperation[]): unknown {
  // Validated application: a patch whose parent path does not exist fails here, as the API server would.
  return jsonpatch.applyPatch(structuredClone(object), [...patch], true, false).newDocument;
}

t.test('a Pod without a securityContext gets one whole', async (t) => {
  const request = requestFor('Pod', pod({ containers: [c('app')] }));
  t.same(mutate(request, RULES), {
    patch: [{ op: 'add', path: '/spec/securityContext', value: { seccompProfile: RUNTIME_DEFAULT } }],
    rules: ['require-seccomp'],
  });
});

t.test('a Pod with a securityContext but no profile gets the profile added into it', async (t) => {
  const object = pod({ securityContext: { runAsNonRoot: true }, containers: [c('app')] });
  const mutation = mutate(requestFor('Pod', object), RULES);
  t.same(mutation.patch, [
    { op: 'add', path: '/spec/securityContext/seccompProfile', value: RUNTIME_DEFAULT },
  ]);
  t.same(apply(object, mutation.patch), {
    ...object,
    spec: {
      securityContext: { runAsNonRoot: true, seccompProfile: RUNTIME_DEFAULT },
      containers: [c('app')],
    },
  });
});

t.test('every pod-template kind: patched at its pod spec, then allowed, then left alone', async (t) => {
  for (const [kind, specPath] of POD_SPEC_PATHS) {
    for (const spec of [{ containers: [c('app')] }, { securityContext: {}, containers: [c('app')] }]) {
      const label = `${kind}${'securityContext' in spec ? ' with an empty securityContext' : ''}`;
      const object = objectOf(kind, spec);
      const mutation = mutate(requestFor(kind, object), RULES);
      const pointer = '/' + specPath.join('/');
      t.same(
        mutation.patch,
        'securityContext' in spec
          ? [{ op: 'add', path: `${pointer}/securityContext/seccompProfile`, value: RUNTIME_DEFAULT }]
          : [{ op: 'add', path: `${pointer}/securityContext`, value: { seccompProfile: RUNTIME_DEFAULT } }],
        label,
      );
      t.equal(evaluate(requestFor(kind, object), RULES).allowed, false, `${label}: denied before the patch`);
      const patched = apply(object, mutation.patch);
      const decision = evaluate(requestFor(kind, patched), RULES);
      t.same(decision.violations, [], `${label}: allowed after the patch`);
      t.equal(decision.allowed, true);
      t.same(mutate(requestFor(kind, patched), RULES), NONE, `${label}: a second mutate adds nothing`);
    }
  }
  t.match(mutate(requestFor('CronJob', objectOf('CronJob', { containers: [c('app')] })), RULES).patch, [
    { path: '/spec/jobTemplate/spec/template/spec/securityContext' },
  ]);
});

t.test('an explicit profile is never overwritten', async (t) => {
  const rows: [name: string, spec: Record<string, unknown>][] = [
    [
      'pod Unconfined',
      { securityContext: { seccompProfile: { type: 'Unconfined' } }, containers: [c('app')] },
    ],
    [
      'pod Localhost',
      {
        securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: 'p.json' } },
        containers: [c('app')],
      },
    ],
    ['pod RuntimeDefault', { securityContext: { seccompProfile: RUNTIME_DEFAULT }, containers: [c('app')] }],
    ['the only container Unconfined', { containers: [c('app', 'Unconfined')] }],
    [
      'every container has one',
      { initContainers: [c('init', 'Localhost')], containers: [c('app', 'RuntimeDefault')] },
    ],
    ['a Windows pod', { os: { name: 'windows' }, containers: [c('app')] }],
  ];
  for (const [name, spec] of rows) t.same(mutate(requestFor('Pod', pod(spec)), RULES), NONE, name);

  // One container Unconfined, one without: the pod default covers the second, the first stays
  // Unconfined and validation denies it with its own message.
  const object = pod({ containers: [c('app', 'Unconfined'), c('sidecar')] });
  const mutation = mutate(requestFor('Pod', object), RULES);
  t.same(mutation.patch, [
    { op: 'add', path: '/spec/securityContext', value: { seccompProfile: RUNTIME_DEFAULT } },
  ]);
  const patched = apply(object, mutation.patch);
  t.same(patched, {
    ...object,
    spec: {
      securityContext: { seccompProfile: RUNTIME_DEFAULT },
      containers: [c('app', 'Unconfined'), c('sidecar')],
    },
  });
  t.same(
    evaluate(requestFor('Pod', patched), RULES).violations.map((v) => v.message),
    ['container "app": securityContext.seccompProfile.type must not be Unconfined'],
  );
});

t.test('which rules ask for a patch', async (t) => {
  const object = pod({ containers: [c('app')] });
  const judge = (ruleset: CompiledRuleSet, options: RequestOptions = {}) =>
    mutate(requestFor('Pod', object, options), ruleset);

  t.same(judge(ruleSet([{ name: 's', check: 'seccomp', params: { mutate: false } }])), NONE, 'mutate: false');
  t.same(
    judge(ruleSet([{ name: 's', check: 'seccomp', params: { requireProfile: false } }])).rules,
    ['s'],
    'requireProfile: false still mutates unless told not to',
  );
  t.same(
    judge(
      ruleSet([
        { name: 'off', check: 'seccomp', params: { mutate: false } },
        { name: 'on', check: 'seccomp' },
        { name: 'priv', check: 'privileged' },
      ]),
    ),
    {
      patch: [{ op: 'add', path: '/spec/securityContext', value: { seccompProfile: RUNTIME_DEFAULT } }],
      rules: ['on'],
    },
    'only the rules that mutate are cited, and the patch is added once',
  );
  t.same(judge(ruleSet([{ name: 'priv', check: 'privileged' }])), NONE, 'no seccomp rule');
  t.same(
    judge(ruleSet([{ name: 's', check: 'seccomp', excludeNamespaces: ['default'] }])),
    NONE,
    'a seccomp rule out of scope',
  );
  t.same(
    judge(ruleSet([{ name: 's', check: 'seccomp', action: 'warn' }])).rules,
    ['s'],
    'a warn rule mutates too',
  );
});

t.test('requests that get no patch', async (t) => {
  const bare = pod({ containers: [c('app')] });
  const deployment = (containers: unknown[], replicas = 1) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: { replicas, template: { spec: { containers } } },
  });
  const rows: [name: string, request: AdmissionRequest][] = [
    ['exempt namespace', requestFor('Pod', bare, { namespace: 'kube-system' })],
    [
      'Pod UPDATE (its securityContext is immutable)',
      requestFor('Pod', bare, { operation: 'UPDATE', oldObject: bare }),
    ],
    [
      'Deployment UPDATE leaving the template unchanged',
      requestFor('Deployment', deployment([c('app')], 3), {
        operation: 'UPDATE',
        oldObject: deployment([c('app')], 1),
      }),
    ],
    ['DELETE', requestFor('Pod', bare, { operation: 'DELETE' })],
    ['malformed: containers not a list', requestFor('Pod', pod({ containers: 'app' }))],
    ['malformed: not an object', requestFor('Pod', 'pod')],
    [
      'subresource ephemeralcontainers',
      requestFor('Pod', bare, { operation: 'UPDATE', subResource: 'ephemeralcontainers' }),
    ],
    [
      'subresource scale',
      requestFor('Deployment', deployment([c('app')]), { operation: 'UPDATE', subResource: 'scale' }),
    ],
    ['a kind without a pod spec', requestFor('ConfigMap', { data: {} })],
  ];
  for (const [name, request] of rows) t.same(mutate(request, RULES), NONE, name);

  const changed = requestFor('Deployment', deployment([c('app'), c('new')]), {
    operation: 'UPDATE',
    oldObject: deployment([c('app')]),
  });
  t.same(
    mutate(changed, RULES).patch,
    [{ op: 'add', path: '/spec/template/spec/securityContext', value: { seccompProfile: RUNTIME_DEFAULT } }],
    'a Deployment UPDATE that changes the template is patched (distractor)',
  );
});
