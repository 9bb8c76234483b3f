// An audit event back to the admission request it was: which events are judged, why the others
// are not, and that the request carries what admission saw (identity, namespace, name, operation).

import t from 'tap';
import { kindsJudgedBy } from '../../src/admission/kinds.js';
import type { LoggedEvent } from '../../src/audit/log-reader.js';
import { loggedRequest, resourceKey } from '../../src/audit/logged-request.js';
import { ruleSet } from '../helpers/rules.js';

const judged = new Map(
  kindsJudgedBy(
    ruleSet([
      { name: 'p', check: 'privileged' },
      { name: 'b', check: 'clusterAdminBinding' },
    ]),
  ).map((r) => [resourceKey(r.group, r.resource), r]),
);

const body = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'from-body' },
  spec: { containers: [] },
};
const event = (extra: Partial<LoggedEvent> = {}): LoggedEvent => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'Request',
  auditID: 'a-1',
  stage: 'ResponseComplete',
  requestURI: '/api/v1/namespaces/shop/pods',
  verb: 'create',
  user: { username: 'alice', groups: ['dev'] },
  objectRef: { resource: 'pods', namespace: 'shop', name: 'web', apiVersion: 'v1' },
  responseStatus: { code: 201 },
  requestObject: body,
  ...extra,
});

t.test('why an event is not judged, in order; distractors that are judged', async (t) => {
  const cases: [string, Partial<LoggedEvent>, string][] = [
    ['RequestReceived stage', { stage: 'RequestReceived' }, 'stage'],
    ['ResponseStarted stage (a watch)', { stage: 'ResponseStarted', verb: 'watch' }, 'stage'],
    ['a read', { verb: 'get' }, 'verb'],
    ['a delete', { verb: 'delete' }, 'verb'],
    [
      'a ConfigMap no rule judges',
      { objectRef: { resource: 'configmaps', namespace: 'shop', apiVersion: 'v1' } },
      'kind',
    ],
    [
      'pods in another API group',
      { objectRef: { resource: 'pods', apiGroup: 'metrics.k8s.io', apiVersion: 'v1beta1' } },
      'kind',
    ],
    ['no objectRef', { objectRef: undefined }, 'kind'],
    ['refused by the API server (422)', { responseStatus: { code: 422 } }, 'refused'],
    ['refused by a webhook (403)', { responseStatus: { code: 403 } }, 'refused'],
    ['refused patch: refused first', { verb: 'patch', responseStatus: { code: 409 } }, 'refused'],
    [
      'a patch (its body is the patch)',
      { verb: 'patch', requestObject: { metadata: { labels: { a: 'b' } } } },
      'patch',
    ],
    ['level Metadata: no body', { level: 'Metadata', requestObject: undefined }, 'noBody'],
    ['a body that is not an object', { requestObject: 'text' }, 'noBody'],
    ['judged: created (201)', {}, 'judged'],
    ['judged: an update (200)', { verb: 'update', responseStatus: { code: 200 } }, 'judged'],
    ['judged: no responseStatus', { responseStatus: undefined }, 'judged'],
    ['judged: a 399 is not a refusal', { responseStatus: { code: 399 } }, 'judged'],
    [
      'judged: a ClusterRoleBinding',
      {
        objectRef: {
          resource: 'clusterrolebindings',
          apiGroup: 'rbac.authorization.k8s.io',
          apiVersion: 'v1',
          name: 'x',
        },
        requestObject: {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          roleRef: {},
        },
      },
      'judged',
    ],
  ];
  for (const [name, extra, want] of cases) {
    const r = loggedRequest(event(extra), judged);
    t.equal(r.judged ? 'judged' : r.reason, want, name);
  }
});

t.test('the request is the one admission saw', async (t) => {
  const r = loggedRequest(event(), judged);
  t.ok(r.judged);
  if (!r.judged) return;
  t.same(r.request, {
    uid: 'a-1',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    name: 'web',
    // The request path's namespace, not the body's: the API server refuses a mismatch anyway.
    namespace: 'shop',
    operation: 'CREATE',
    userInfo: { username: 'alice', groups: ['dev'] },
    object: body,
    dryRun: false,
  });

  const impersonated = loggedRequest(
    event({
      impersonatedUser: { username: 'bob', groups: ['ops'] },
      verb: 'update',
      requestURI: '/api/v1/namespaces/shop/pods/web?dryRun=All',
    }),
    judged,
  );
  t.ok(impersonated.judged && impersonated.request.operation === 'UPDATE');
  t.same(
    impersonated.judged && impersonated.request.userInfo,
    { username: 'bob', groups: ['ops'] },
    'the impersonated identity',
  );
  t.equal(impersonated.judged && impersonated.request.dryRun, true);

  // generateName: no name in objectRef nor body; the subresource kubectl debug writes.
  const unnamed = loggedRequest(
    event({
      objectRef: {
        resource: 'pods',
        namespace: 'shop',
        apiVersion: 'v1',
        subresource: 'ephemeralcontainers',
      },
      requestObject: { spec: {} },
    }),
    judged,
  );
  t.ok(unnamed.judged);
  if (!unnamed.judged) return;
  t.equal(unnamed.request.name, undefined);
  t.equal(unnamed.request.subResource, 'ephemeralcontainers');
  t.same(
    unnamed.request.kind,
    { group: '', version: 'v1', kind: 'Pod' },
    'apiVersion and kind from the path when the body has none',
  );
  t.same(unnamed.request.object, {
    spec: {},
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace: 'shop' },
  });

  const deployment = loggedRequest(
    event({
      objectRef: {
        resource: 'deployments',
        apiGroup: 'apps',
        apiVersion: 'v1',
        namespace: 'shop',
        name: 'd',
      },
      requestObject: {},
    }),
    new Map(
      kindsJudgedBy(ruleSet([{ name: 'p', check: 'privileged' }])).map((r) => [
        resourceKey(r.group, r.resource),
        r,
      ]),
    ),
  );
  t.same(deployment.judged && deployment.request.kind, { group: 'apps', version: 'v1', kind: 'Deployment' });
});
