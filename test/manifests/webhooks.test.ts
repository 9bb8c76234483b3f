// The webhook configurations cannot lock a cluster up and cover exactly what the checks judge.
// Coverage is derived from the core (its pod-template kinds and binding kinds), so a kind added
// there without a webhook rule here fails this test. What the API server does with these
// configurations (the matchConditions, the selectors) is exercised in test/e2e/manifests.test.ts.

import t from 'tap';
import { mutationCondition, POD_TEMPLATE_KINDS } from '../../src/core/index.js';
import { BINDING_KINDS, RBAC_GROUP, ROLE_KINDS } from '../../src/core/rbac.js';
import { CEL_WEBHOOK_NAME } from '../../src/config/cel-cluster.js';
import {
  at,
  namespaceLabels,
  only,
  record,
  records,
  renderManifests,
  selects,
  stringMap,
  strings,
} from '../helpers/manifests.js';

const base = renderManifests();
const validating = only(base, 'ValidatingWebhookConfiguration');
const mutating = only(base, 'MutatingWebhookConfiguration');
const VALIDATING = 'workloads.portcullis.io';
// workloads.portcullis.io's twin in Portcullis' own namespace, the only one with the own-pod condition.
const OWN_NAMESPACE = 'workloads-own-namespace.portcullis.io';
const OWN_POD = 'not-portcullis-own-pod';
const MUTATING = 'seccomp-defaults.portcullis.io';
const service = only(base, 'Service');
const rulesConfigMap = only(base, 'ConfigMap');
const rulesNamespace = String(at(rulesConfigMap, 'metadata', 'namespace'));
const rulesName = String(at(rulesConfigMap, 'metadata', 'name'));

const webhooksOf = (config: unknown) => records(at(config, 'webhooks'));
const all = [
  ...webhooksOf(validating).map((webhook) => ({ config: 'validating', path: '/validate', webhook })),
  ...webhooksOf(mutating).map((webhook) => ({ config: 'mutating', path: '/mutate', webhook })),
];
const named = (config: unknown, name: string) => {
  const webhook = webhooksOf(config).find((w) => w['name'] === name);
  if (webhook === undefined) throw new Error(`no webhook ${name}`);
  return webhook;
};

/** `group/resource OPERATION` for every combination a webhook's rules match. */
function coverage(webhook: Record<string, unknown>): string[] {
  return records(webhook['rules'])
    .flatMap((rule) =>
      strings(rule['apiGroups']).flatMap((group) =>
        strings(rule['resources']).flatMap((resource) =>
          strings(rule['operations']).map((operation) => `${group}/${resource} ${operation}`),
        ),
      ),
    )
    .sort();
}

// Resource names of the core's kinds: Kubernetes' lower-case plural.
const resourceOf = (kind: string): string => `${kind.toLowerCase()}s`;
const podKinds = POD_TEMPLATE_KINDS.map((key) => {
  const [group = '', kind = ''] = key.split('/');
  return { group, resource: resourceOf(kind) };
});
const both = (group: string, resource: string) => [
  `${group}/${resource} CREATE`,
  `${group}/${resource} UPDATE`,
];

t.test('every webhook: v1 only, no side effects, ≤ 5 s, fails closed, equivalent versions', async (t) => {
  t.equal(all.length, 5);
  for (const { config, webhook } of all) {
    const name = `${config} ${String(webhook['name'])}`;
    t.same(webhook['admissionReviewVersions'], ['v1'], `${name}: admissionReviewVersions`);
    t.equal(webhook['sideEffects'], 'None', `${name}: sideEffects (dry-run requests are judged too)`);
    const timeout = webhook['timeoutSeconds'];
    t.ok(
      typeof timeout === 'number' && Number.isInteger(timeout) && timeout >= 1 && timeout <= 5,
      `${name}: timeoutSeconds ${String(timeout)}`,
    );
    t.equal(webhook['failurePolicy'], 'Fail', `${name}: failurePolicy`);
    t.equal(webhook['matchPolicy'], 'Equivalent', `${name}: matchPolicy`);
    t.match(String(webhook['name']), /^[a-z0-9-]+(\.[a-z0-9-]+){2,}$/, `${name}: a fully qualified name`);
  }
  t.equal(at(named(mutating, MUTATING), 'reinvocationPolicy'), 'IfNeeded');
});

t.test('every webhook calls the rendered Service on its port, at the path of its kind', async (t) => {
  const servicePort = records(at(service, 'spec', 'ports'))[0];
  for (const { config, path, webhook } of all) {
    const name = `${config} ${String(webhook['name'])}`;
    t.same(
      webhook['clientConfig'],
      {
        service: {
          namespace: at(service, 'metadata', 'namespace'),
          name: at(service, 'metadata', 'name'),
          path,
          port: servicePort?.['port'],
        },
      },
      `${name}: clientConfig (no caBundle in the base: the overlays or the install steps add it)`,
    );
  }
  t.equal(servicePort?.['port'], 443);
});

t.test('kube-system is never sent; no objectSelector, which anyone could satisfy with a label', async (t) => {
  for (const { config, webhook } of all) {
    const name = `${config} ${String(webhook['name'])}`;
    t.notOk(
      selects(webhook['namespaceSelector'], namespaceLabels('kube-system')),
      `${name}: kube-system excluded`,
    );
    t.same(record(webhook['objectSelector']), {}, `${name}: no objectSelector`);
  }
});

t.test('webhook names are unique across both configurations', async (t) => {
  // The API server files each webhook's auditAnnotations under its name and keeps the first value
  // of a key: a mutating and a validating webhook sharing a name would lose the validating decision.
  const names = all.map(({ webhook }) => String(webhook['name']));
  t.same(names.length, new Set(names).size, names.join(', '));
});

const NAMESPACES = ['portcullis', 'default', 'shop', 'kube-public', 'kube-node-lease', 'kube-system'];

t.test(
  'the validating workload pair judges every namespace but kube-system exactly once, Portcullis’ own included',
  async (t) => {
    t.equal(rulesNamespace, 'portcullis', 'the rendered namespace is among those tried');
    const pair = [named(validating, VALIDATING), named(validating, OWN_NAMESPACE)];
    for (const namespace of NAMESPACES) {
      const selecting = pair
        .filter((w) => selects(w['namespaceSelector'], namespaceLabels(namespace)))
        .map((w) => String(w['name']));
      t.same(
        selecting,
        namespace === 'kube-system' ? [] : [namespace === rulesNamespace ? OWN_NAMESPACE : VALIDATING],
        `${namespace}: ${selecting.join(', ') || 'none'}`,
      );
    }
    // The API server matches a namespaceSelector only against namespaced objects: a ClusterRole
    // goes to every webhook whose rules name it. Only workloads.portcullis.io's do.
    t.same(
      records(named(validating, OWN_NAMESPACE)['rules']).map((rule) => rule['scope']),
      records(named(validating, VALIDATING)['rules']).map(() => 'Namespaced'),
      'the twin sends namespaced objects only',
    );
    t.same(
      records(named(validating, OWN_NAMESPACE)['rules']).map((rule) => ({ ...rule, scope: 'Namespaced' })),
      records(named(validating, VALIDATING)['rules']).map((rule) => ({ ...rule, scope: 'Namespaced' })),
      'the same rules but for their scope',
    );
  },
);

t.test('the mutating webhook judges every namespace but kube-system, Portcullis’ own included', async (t) => {
  const webhook = named(mutating, MUTATING);
  for (const namespace of NAMESPACES) {
    t.equal(
      selects(webhook['namespaceSelector'], namespaceLabels(namespace)),
      namespace !== 'kube-system',
      namespace,
    );
  }
});

t.test(
  'validating coverage: exactly the pod kinds, ephemeral containers, exec/attach/port-forward, roles and role bindings',
  async (t) => {
    const expected = [
      ...podKinds.flatMap(({ group, resource }) => both(group, resource)),
      '/pods/ephemeralcontainers UPDATE',
      // No other CONNECT: nodes/proxy, services/proxy and pods/proxy are never sent.
      '/pods/exec CONNECT',
      '/pods/attach CONNECT',
      '/pods/portforward CONNECT',
      ...BINDING_KINDS.flatMap((kind) => both(RBAC_GROUP, resourceOf(kind))),
      ...ROLE_KINDS.flatMap((kind) => both(RBAC_GROUP, resourceOf(kind))),
    ].sort();
    t.same(coverage(named(validating, VALIDATING)), expected);
    t.same(coverage(named(validating, OWN_NAMESPACE)), expected, OWN_NAMESPACE);
  },
);

t.test(
  'mutating coverage: pods on CREATE (a pod’s securityContext is immutable), templates on both',
  async (t) => {
    const expected = podKinds
      .flatMap(({ group, resource }) =>
        resource === 'pods' ? [`${group}/pods CREATE`] : both(group, resource),
      )
      .sort();
    t.same(coverage(named(mutating, MUTATING)), expected);
  },
);

t.test('nothing the cluster needs to heal itself, and no wildcards', async (t) => {
  for (const { config, webhook } of all) {
    const name = `${config} ${String(webhook['name'])}`;
    for (const rule of records(webhook['rules'])) {
      for (const field of ['apiGroups', 'apiVersions', 'resources', 'operations']) {
        t.notOk(
          strings(rule[field]).some((v) => v.includes('*')),
          `${name}: no wildcard in ${field}`,
        );
      }
      t.same(rule['apiVersions'], ['v1'], `${name}: v1 (matchPolicy Equivalent brings the others)`);
      for (const resource of strings(rule['resources'])) {
        t.notOk(
          /^(nodes|leases|events|namespaces|endpoints|endpointslices|tokenreviews)(\/|$)/.test(resource),
          `${name}: ${resource}`,
        );
      }
      t.notOk(strings(rule['operations']).includes('DELETE'), `${name}: no DELETE`);
      // CONNECT only into pods, for podExec: never nodes/proxy or services/proxy, whose failure
      // (failurePolicy Fail) would cut the control plane off from the nodes.
      if (strings(rule['operations']).includes('CONNECT')) {
        t.same(rule['operations'], ['CONNECT'], `${name}: CONNECT in a rule of its own`);
        t.same(
          rule['resources'],
          ['pods/exec', 'pods/attach', 'pods/portforward'],
          `${name}: CONNECT into pods only`,
        );
      }
    }
  }
});

t.test('the rules webhook sees only the rules ConfigMap', async (t) => {
  const webhook = named(validating, 'rules.portcullis.io');
  t.same(coverage(webhook), ['/configmaps CREATE', '/configmaps UPDATE']);
  t.ok(selects(webhook['namespaceSelector'], namespaceLabels(rulesNamespace)), 'its namespace');
  for (const other of ['default', 'kube-system', 'shop']) {
    t.notOk(selects(webhook['namespaceSelector'], namespaceLabels(other)), `not ${other}`);
  }
  const conditions = records(webhook['matchConditions']);
  t.equal(conditions.length, 1);
  t.equal(
    conditions[0]?.['expression'],
    `request.namespace == '${rulesNamespace}' && has(request.name) && request.name == '${rulesName}'`,
    'the name and namespace of the rendered ConfigMap',
  );
});

t.test(
  'the own-pod exemption is on every webhook that may be sent pods in Portcullis’ namespace, and only there',
  async (t) => {
    // custom.portcullis.io ships without rules, but serve gives it those of the cel rules in force,
    // pods among them maybe: while Portcullis is down it would refuse its own replacement pods.
    const maySendPods = (webhook: Record<string, unknown>) =>
      webhook['name'] === CEL_WEBHOOK_NAME || coverage(webhook).includes('/pods CREATE');
    const withExemption = all
      .filter(({ webhook }) => records(webhook['matchConditions']).some((c) => c['name'] === OWN_POD))
      .map(({ config, webhook }) => `${config} ${String(webhook['name'])}`);
    const needingIt = all
      .filter(
        ({ webhook }) =>
          maySendPods(webhook) && selects(webhook['namespaceSelector'], namespaceLabels(rulesNamespace)),
      )
      .map(({ config, webhook }) => `${config} ${String(webhook['name'])}`);
    t.same(withExemption, needingIt);
    t.same(needingIt, [
      `validating ${CEL_WEBHOOK_NAME}`,
      `validating ${OWN_NAMESPACE}`,
      `mutating ${MUTATING}`,
    ]);
    // Each webhook with matchConditions costs the API server a conversion of the request per
    // request matched: workloads.portcullis.io, sent every pod of the cluster, has none.
    t.same(named(validating, VALIDATING)['matchConditions'], undefined, `${VALIDATING}: no matchConditions`);
    t.same(
      records(named(validating, OWN_NAMESPACE)['matchConditions']).map((c) => c['name']),
      [OWN_POD],
    );
    t.same(
      records(named(validating, CEL_WEBHOOK_NAME)['matchConditions']).map((c) => c['name']),
      [OWN_POD],
    );
  },
);

t.test('only Portcullis’ own pods skip the workload webhooks, and only the narrow way', async (t) => {
  const expressions = all.flatMap(({ webhook }) =>
    records(webhook['matchConditions'])
      .filter((c) => c['name'] === OWN_POD)
      .map((c) => String(c['expression'])),
  );
  t.equal(expressions.length, 3);
  t.equal(new Set(expressions).size, 1, 'every webhook excludes the same requests');
  const expression = expressions[0] ?? '';
  t.match(expression, /^!\(/, 'an exclusion: everything else is sent');
  // Each clause narrows the exclusion; dropping any one of them would widen it.
  for (const clause of [
    "request.namespace == 'portcullis'",
    "request.resource.group == ''",
    "request.resource.resource == 'pods'",
    '!has(request.subResource)',
    "request.operation == 'CREATE'",
    "request.userInfo.username == 'system:serviceaccount:kube-system:replicaset-controller'",
    "object.metadata.labels['app.kubernetes.io/name'] == 'portcullis'",
  ]) {
    t.ok(expression.includes(clause), clause);
  }
  t.notMatch(expression, /\|\|/, 'a conjunction only: no clause can stand in for another');
  const podLabels = stringMap(at(only(base, 'Deployment'), 'spec', 'template', 'metadata', 'labels'));
  t.equal(podLabels['app.kubernetes.io/name'], 'portcullis', 'the Deployment’s pods carry the label');
});

t.test(
  "the mutating webhook is called only when a check could patch: its condition is the checks' own",
  async (t) => {
    const conditions = records(named(mutating, MUTATING)['matchConditions']);
    t.same(
      conditions.map((c) => c['name']),
      ['could-patch', 'not-portcullis-own-pod'],
      'the validating webhook has no such condition: every request it is sent gets a decision and an audit event',
    );
    // YAML folds the manifest's text over lines; CEL reads any run of white space as one.
    const shipped = String(conditions[0]?.['expression']).replace(/\s+/g, ' ');
    t.equal(
      shipped,
      mutationCondition(),
      'regenerate the block from mutationCondition() when a mutation changes',
    );
    t.same(
      records(named(validating, OWN_NAMESPACE)['matchConditions']).map((c) => c['name']),
      [OWN_POD],
      'the validating webhooks keep only the self-exclusion',
    );
  },
);
