// Audit event fields no other test pins down, with the server's clock injected so timestamps are
// asserted exactly: objectRef.subresource, the endpoint annotation on rejected bodies, the RuleSet's
// ConfigMap resourceVersion, bounds on caller-supplied fields; and a Pod UPDATE that changes the
// spec, through /mutate (no patch: a running pod's spec takes none) and /validate (judged).

import t from 'tap';
import { ANNOTATIONS, MAX_FIELD_LENGTH, MAX_GROUPS, SESSION_COMMAND_MAX } from '../../src/audit/event.js';
import { VERSION } from '../../src/version.js';
import {
  admissionResponse,
  currentHash,
  defaultRules,
  localhostCertificates,
  podCreateReview,
  podExecReview,
  startServer,
} from '../helpers/server.js';

const certificates = await localhostCertificates();
/** What JSON.parse says of the broken body on this Node version. */
const JSON_ERROR = (() => {
  try {
    JSON.parse('{not json');
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return '';
})();
const START = Date.UTC(2026, 10, 23, 10, 0, 0, 123) + 0.456;
let ticks = 0;
/** Each reading 1.5 ms after the one before. */
const clock = (): number => START + 1.5 * ticks++;

const loaded = { ...(await defaultRules()), resourceVersion: '4711' };
const srv = await startServer({ certificates, rules: loaded, server: { clock } });
t.teardown(() => srv.close());

t.test('objectRef.subresource and exact timestamps from the injected clock', async (t) => {
  const review = podCreateReview();
  review.request['operation'] = 'UPDATE';
  review.request['subResource'] = 'ephemeralcontainers';
  review.request['name'] = 'web-1';
  review.request['oldObject'] = structuredClone(review.request.object);
  ticks = 0;
  await srv.request('/validate', { body: review });
  const event = srv.audit.events.at(-1);
  t.same(event?.objectRef, {
    resource: 'pods',
    subresource: 'ephemeralcontainers',
    namespace: 'shop',
    name: 'web-1',
    apiVersion: 'v1',
  });
  t.equal(event?.verb, 'update');
  t.equal(event?.requestReceivedTimestamp, '2026-11-23T10:00:00.123456Z');
  t.equal(event?.stageTimestamp, '2026-11-23T10:00:00.124956Z');

  const plain = podCreateReview();
  await srv.request('/validate', { body: plain });
  t.equal(srv.audit.events.at(-1)?.objectRef?.subresource, undefined, 'none when there is none (distractor)');
});

t.test('rejected bodies: the whole event, with the endpoint they were sent to', async (t) => {
  for (const endpoint of ['validate', 'mutate'] as const) {
    ticks = 0;
    await srv.request(`/${endpoint}`, { body: '{not json', headers: { 'user-agent': 'probe/1.0' } });
    const event = srv.audit.events.at(-1);
    t.strictSame(
      { ...event, auditID: '' },
      {
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1',
        level: 'Metadata',
        auditID: '',
        stage: 'ResponseComplete',
        requestURI: `/${endpoint}`,
        verb: 'post',
        sourceIPs: ['127.0.0.1'],
        userAgent: 'probe/1.0',
        requestReceivedTimestamp: '2026-11-23T10:00:00.123456Z',
        stageTimestamp: '2026-11-23T10:00:00.124956Z',
        user: {},
        responseStatus: {
          metadata: {},
          status: 'Failure',
          code: 400,
          reason: 'BadRequest',
          message: `body is not valid JSON: ${JSON_ERROR}`,
        },
        annotations: {
          [ANNOTATIONS.rulesetHash]: currentHash(srv.rules),
          [ANNOTATIONS.rulesetResourceVersion]: '4711',
          [ANNOTATIONS.endpoint]: endpoint,
          [ANNOTATIONS.version]: VERSION,
        },
      },
      endpoint,
    );
  }
});

t.test('ruleset-resource-version names the ConfigMap version in force, and only then', async (t) => {
  await srv.request('/validate', { body: podCreateReview() });
  t.equal(srv.audit.events.at(-1)?.annotations[ANNOTATIONS.rulesetResourceVersion], '4711');
  const answer = admissionResponse(await srv.request('/validate', { body: podCreateReview() }));
  t.equal(answer.auditAnnotations['ruleset-hash'], currentHash(srv.rules));

  srv.rules.setRuleSet(await defaultRules()); // from a file: no resourceVersion
  await srv.request('/validate', { body: podCreateReview() });
  t.notOk(
    ANNOTATIONS.rulesetResourceVersion in (srv.audit.events.at(-1)?.annotations ?? {}),
    'a file has none',
  );
  srv.rules.setRuleSet(loaded);
});

t.test('caller-supplied fields are cut to bounds, and the event says so', async (t) => {
  const review = podCreateReview();
  review.request['userInfo'] = {
    username: 'u'.repeat(100_000),
    groups: Array.from({ length: 10_000 }, (_, i) => `group-${i}`),
    extra: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`key-${i}`, ['v']])),
  };
  const reply = await srv.request('/validate', {
    body: review,
    headers: { 'user-agent': 'a'.repeat(8_000) },
  });
  t.equal(reply.status, 200);
  const event = srv.audit.events.at(-1);
  t.equal(event?.user.username, `${'u'.repeat(MAX_FIELD_LENGTH)}…`);
  t.equal(event?.user.groups?.length, MAX_GROUPS);
  t.equal(Object.keys(event?.user.extra ?? {}).length, 32);
  t.equal(event?.userAgent?.length, MAX_FIELD_LENGTH + 1);
  t.equal(event?.annotations[ANNOTATIONS.truncated], 'true');
  t.ok(JSON.stringify(event).length < 64 * 1024, `the event is ${JSON.stringify(event).length} bytes`);

  await srv.request('/validate', { body: podCreateReview() });
  t.notOk(ANNOTATIONS.truncated in (srv.audit.events.at(-1)?.annotations ?? {}), 'nothing cut, nothing said');
});

t.test(
  'a CONNECT exec: the container and command it names are cut in the answer and the event',
  async (t) => {
    const review = podExecReview();
    const options = review.request['object'] as Record<string, unknown>;
    options['container'] = 'c'.repeat(200_000);
    options['command'] = ['echo', 'a'.repeat(200_000)];
    const reply = await srv.request('/validate', { body: review });
    t.equal(reply.status, 200);
    t.ok(reply.text.length < 64 * 1024, `the answer is ${reply.text.length} bytes`);
    const answer = admissionResponse(reply);
    const container = `${'c'.repeat(MAX_FIELD_LENGTH)}… (${200_000 - MAX_FIELD_LENGTH} more characters)`;
    const line = `echo ${'a'.repeat(200_000)}`;
    const command = `${line.slice(0, SESSION_COMMAND_MAX)}… (${line.length - SESSION_COMMAND_MAX} more characters)`;
    t.equal(answer.auditAnnotations['container'], container);
    t.equal(answer.auditAnnotations['command'], command);
    const event = srv.audit.events.at(-1);
    t.equal(event?.annotations['portcullis.io/container'], container);
    t.equal(event?.annotations['portcullis.io/command'], command);
    t.equal(event?.annotations[ANNOTATIONS.truncated], 'true');
    t.ok(JSON.stringify(event).length < 64 * 1024, `the event is ${JSON.stringify(event).length} bytes`);

    // Distractor: the exec as kubectl sends it is recorded whole, and nothing is said to be cut.
    await srv.request('/validate', { body: podExecReview() });
    const plain = srv.audit.events.at(-1);
    t.equal(plain?.annotations['portcullis.io/container'], 'web');
    t.notOk(ANNOTATIONS.truncated in (plain?.annotations ?? {}), 'nothing cut, nothing said');
  },
);

t.test('a Pod UPDATE that changes the spec: /mutate sends no patch, /validate judges it', async (t) => {
  const before = podCreateReview().request.object;
  const review = podCreateReview();
  review.request['operation'] = 'UPDATE';
  review.request['name'] = 'web-1';
  review.request['oldObject'] = before;
  const [first] = review.request.object.spec.containers;
  if (first === undefined) throw new Error('fixture has no container');
  first['image'] = 'registry.k8s.io/pause:3.10-changed';

  const mutated = admissionResponse(await srv.request('/mutate', { body: review }));
  t.equal(mutated.allowed, true);
  t.equal(mutated.patch, undefined, 'no patch: the API server would refuse one on a running pod');
  t.match(srv.audit.events.at(-1), {
    verb: 'update',
    annotations: { [ANNOTATIONS.decision]: 'allow', [ANNOTATIONS.endpoint]: 'mutate' },
  });
  t.notOk(
    ANNOTATIONS.violations in (srv.audit.events.at(-1)?.annotations ?? {}),
    'no rule asked for a patch',
  );

  const validated = admissionResponse(await srv.request('/validate', { body: review }));
  t.equal(validated.allowed, false, 'the changed spec is judged: it still lacks a seccomp profile');
  t.match(validated.status?.message, /\[require-seccomp\]$/);

  // Distractors: the same pod as a CREATE is patched; a Deployment UPDATE changing its template is too.
  const created = admissionResponse(await srv.request('/mutate', { body: podCreateReview() }));
  t.equal(created.patchType, 'JSONPatch');
  const deployment = podCreateReview();
  const template = { metadata: {}, spec: structuredClone(deployment.request.object.spec) };
  const oldTemplate = structuredClone(template);
  oldTemplate.spec.containers = [];
  Object.assign(deployment.request, {
    kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
    resource: { group: 'apps', version: 'v1', resource: 'deployments' },
    operation: 'UPDATE',
    name: 'web',
    object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { template } },
    oldObject: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: { template: oldTemplate },
    },
  });
  t.equal(admissionResponse(await srv.request('/mutate', { body: deployment })).patchType, 'JSONPatch');
});
