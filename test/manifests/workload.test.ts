// Portcullis' own objects: least-privilege RBAC, a hardened and highly available Deployment, a
// Service and a NetworkPolicy that expose the webhook port only, and names that agree with each
// other across files.

import { join } from 'node:path';
import t from 'tap';
import {
  at,
  describe,
  list,
  only,
  record,
  records,
  renderInScratchTree,
  renderManifests,
  REPO_ROOT,
  selects,
  stringMap,
  strings,
  type KubeObject,
} from '../helpers/manifests.js';

const base = renderManifests();
const deployment = only(base, 'Deployment');
const podSpec = record(at(deployment, 'spec', 'template', 'spec'));
const podLabels = stringMap(at(deployment, 'spec', 'template', 'metadata', 'labels'));
const container = records(podSpec['containers'])[0] ?? {};
const rulesConfigMap = only(base, 'ConfigMap');

const renders: Record<string, KubeObject[]> = {
  base,
  'overlays/cert-manager': renderManifests(join(REPO_ROOT, 'manifests/overlays/cert-manager')),
  'overlays/portcullis-certs': renderInScratchTree('overlays/portcullis-certs'),
  'overlays/local-url': renderInScratchTree('overlays/local-url'),
};

t.test(
  'cluster-wide, in every render: only the ClusterRole cel rules need, bound to the ServiceAccount',
  async (t) => {
    for (const [name, objects] of Object.entries(renders)) {
      const clusterWide = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding');
      t.same(
        clusterWide.map(describe).sort(),
        [
          'rbac.authorization.k8s.io/v1 ClusterRole portcullis',
          'rbac.authorization.k8s.io/v1 ClusterRole portcullis-clusterrole-reader',
          'rbac.authorization.k8s.io/v1 ClusterRoleBinding portcullis',
          'rbac.authorization.k8s.io/v1 ClusterRoleBinding portcullis-clusterrole-reader',
        ],
        name,
      );
    }
    const validating = only(base, 'ValidatingWebhookConfiguration');
    t.same(named(base, 'ClusterRole', 'portcullis')['rules'], [
      // Read only: the labels and fields of Namespaces, for namespaceObject and namespaceSelector.
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
      // Its own webhook configuration, by name; never create or delete, never another one.
      {
        apiGroups: ['admissionregistration.k8s.io'],
        resources: ['validatingwebhookconfigurations'],
        resourceNames: [at(validating, 'metadata', 'name')],
        verbs: ['get', 'patch'],
      },
    ]);
    const binding = named(base, 'ClusterRoleBinding', 'portcullis');
    t.same(binding['roleRef'], {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'portcullis',
    });
    t.same(binding['subjects'], [{ kind: 'ServiceAccount', name: 'portcullis', namespace: 'portcullis' }]);
  },
);

t.test('the ClusterRole reader: get, list, watch on clusterroles, for the binding checks', async (t) => {
  t.same(named(base, 'ClusterRole', 'portcullis-clusterrole-reader')['rules'], [
    {
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['clusterroles'],
      verbs: ['get', 'list', 'watch'],
    },
  ]);
  const binding = named(base, 'ClusterRoleBinding', 'portcullis-clusterrole-reader');
  t.same(binding['roleRef'], {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'ClusterRole',
    name: 'portcullis-clusterrole-reader',
  });
  t.same(binding['subjects'], [{ kind: 'ServiceAccount', name: 'portcullis', namespace: 'portcullis' }]);
});

function named(objects: KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && record(o['metadata'])['name'] === name);
  if (found === undefined) throw new Error(`no ${kind} ${name}`);
  return found;
}

t.test('the Role grants its one ConfigMap by name and Events, nothing else', async (t) => {
  const role = only(base, 'Role');
  t.equal(at(role, 'metadata', 'namespace'), at(rulesConfigMap, 'metadata', 'namespace'));
  t.same(role['rules'], [
    {
      apiGroups: [''],
      resources: ['configmaps'],
      resourceNames: [at(rulesConfigMap, 'metadata', 'name')],
      verbs: ['get', 'list', 'watch'],
    },
    { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  ]);
});

t.test('the RoleBinding gives that Role to the ServiceAccount the pods run as', async (t) => {
  const binding = only(base, 'RoleBinding');
  const account = only(base, 'ServiceAccount');
  t.same(binding['roleRef'], {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'Role',
    name: at(only(base, 'Role'), 'metadata', 'name'),
  });
  t.same(binding['subjects'], [
    {
      kind: 'ServiceAccount',
      name: at(account, 'metadata', 'name'),
      namespace: at(account, 'metadata', 'namespace'),
    },
  ]);
  t.equal(podSpec['serviceAccountName'], at(account, 'metadata', 'name'));
  t.equal(account['automountServiceAccountToken'], false, 'no token for anything else using the account');
  t.equal(podSpec['automountServiceAccountToken'], true, 'the server needs one: it watches its ConfigMap');
});

t.test('highly available: replicas, rollout, spread, disruption budget', async (t) => {
  const replicas = at(deployment, 'spec', 'replicas');
  t.ok(typeof replicas === 'number' && replicas >= 2, `replicas ${String(replicas)}`);
  t.equal(at(deployment, 'spec', 'strategy', 'rollingUpdate', 'maxUnavailable'), 0);
  t.ok(selects(at(deployment, 'spec', 'selector'), podLabels), 'the selector selects the template');

  const spread = records(podSpec['topologySpreadConstraints']);
  const byHost = spread.find((c) => c['topologyKey'] === 'kubernetes.io/hostname');
  t.ok(byHost, 'spread across nodes');
  t.equal(byHost?.['maxSkew'], 1);
  t.ok(selects(byHost?.['labelSelector'], podLabels), 'spreading its own pods');
  t.notOk('priorityClassName' in podSpec, 'no priority class (system-* classes are for kube-system)');

  const budget = only(base, 'PodDisruptionBudget');
  t.equal(at(budget, 'spec', 'minAvailable'), 1);
  t.ok(selects(at(budget, 'spec', 'selector'), podLabels), 'the budget covers the pods');
  t.ok(typeof replicas === 'number' && replicas > 1, 'minAvailable 1 < replicas: a drain can proceed');
});

t.test('hardened pod: non-root numeric ids, seccomp, read-only root, no privileges', async (t) => {
  const pod = record(podSpec['securityContext']);
  t.equal(pod['runAsNonRoot'], true);
  for (const id of ['runAsUser', 'runAsGroup']) {
    const value = pod[id];
    t.ok(typeof value === 'number' && Number.isInteger(value) && value > 0, `${id} ${String(value)}`);
  }
  t.same(pod['seccompProfile'], { type: 'RuntimeDefault' });
  for (const host of ['hostNetwork', 'hostPID', 'hostIPC']) t.notOk(podSpec[host], host);
  t.same(
    records(podSpec['volumes']).filter((v) => 'hostPath' in v),
    [],
    'no hostPath volume',
  );

  t.equal(records(podSpec['containers']).length, 1);
  t.same(list(podSpec['initContainers']), []);
  const security = record(container['securityContext']);
  t.equal(security['allowPrivilegeEscalation'], false);
  t.equal(security['readOnlyRootFilesystem'], true);
  t.notOk(security['privileged'], 'not privileged');
  t.same(security['capabilities'], { drop: ['ALL'] }, 'drops all capabilities, adds none');
});

t.test('resources: requests and limits for CPU and memory', async (t) => {
  for (const kind of ['requests', 'limits']) {
    for (const resource of ['cpu', 'memory']) {
      t.ok(at(container, 'resources', kind, resource), `${kind}.${resource}`);
    }
  }
});

t.test(
  'probes: readiness on /readyz, liveness on /healthz, both over HTTPS on the webhook port',
  async (t) => {
    const port = records(container['ports'])[0];
    t.same(port, { name: 'https', containerPort: 8443, protocol: 'TCP' });
    t.same(at(container, 'readinessProbe', 'httpGet'), { path: '/readyz', port: 'https', scheme: 'HTTPS' });
    t.same(at(container, 'livenessProbe', 'httpGet'), { path: '/healthz', port: 'https', scheme: 'HTTPS' });
  },
);

t.test(
  'the server’s arguments name the ConfigMap, the mounted cert and the port of these manifests',
  async (t) => {
    const configMap = `${String(at(rulesConfigMap, 'metadata', 'namespace'))}/${String(at(rulesConfigMap, 'metadata', 'name'))}`;
    t.same(container['args'], [
      'serve',
      '--rules-configmap',
      configMap,
      '--webhook-configuration',
      String(at(only(base, 'ValidatingWebhookConfiguration'), 'metadata', 'name')),
      '--tls-cert',
      '/tls/tls.crt',
      '--tls-key',
      '/tls/tls.key',
      '--port',
      String(at(records(container['ports'])[0], 'containerPort')),
    ]);
    const mount = records(container['volumeMounts']).find((m) => m['mountPath'] === '/tls');
    t.equal(mount?.['readOnly'], true, '/tls is mounted read-only');
    const volume = records(podSpec['volumes']).find((v) => v['name'] === mount?.['name']);
    t.equal(at(volume, 'secret', 'secretName'), 'portcullis-tls');
    const tmp = records(container['volumeMounts']).find((m) => m['mountPath'] === '/tmp');
    t.ok(tmp, 'a writable /tmp on the read-only root');
    t.ok(
      at(
        records(podSpec['volumes']).find((v) => v['name'] === tmp?.['name']),
        'emptyDir',
      ),
      '/tmp is an emptyDir',
    );
  },
);

t.test('the Service sends 443 to the pods’ https port', async (t) => {
  const service = only(base, 'Service');
  t.same(at(service, 'spec', 'ports'), [{ name: 'https', protocol: 'TCP', port: 443, targetPort: 'https' }]);
  t.ok(selects({ matchLabels: at(service, 'spec', 'selector') }, podLabels));
  t.equal(at(service, 'spec', 'type'), 'ClusterIP');
});

t.test('the NetworkPolicy admits TCP 8443 to Portcullis’ pods and nothing else', async (t) => {
  const policy = only(base, 'NetworkPolicy');
  t.ok(selects(at(policy, 'spec', 'podSelector'), podLabels), 'selects the pods');
  t.same(at(policy, 'spec', 'policyTypes'), ['Ingress']);
  t.same(at(policy, 'spec', 'ingress'), [{ ports: [{ protocol: 'TCP', port: 8443 }] }]);
});

t.test('the namespace enforces Pod Security restricted', async (t) => {
  const namespace = only(base, 'Namespace');
  t.equal(at(namespace, 'metadata', 'labels', 'pod-security.kubernetes.io/enforce'), 'restricted');
  t.equal(at(namespace, 'metadata', 'name'), at(rulesConfigMap, 'metadata', 'namespace'));
  t.same(
    strings(
      base
        .filter((o) => o.kind !== 'Namespace' && at(o, 'metadata', 'namespace') !== undefined)
        .map((o) => at(o, 'metadata', 'namespace')),
    ).filter((ns) => ns !== at(namespace, 'metadata', 'name')),
    [],
    'every namespaced object lives there',
  );
});
