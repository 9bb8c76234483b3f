// What Kubernetes' own RBAC objects hold, written down from its bootstrap policy
// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy, policy.go and controller_policy.go, v1.34 with
// its default feature gates). The API server creates these at every start and puts back any rule
// or subject that is missing (unless the object is annotated
// rbac.authorization.kubernetes.io/autoupdate=false), so Portcullis may rely on them without seeing
// them: a ClusterRoleBinding of `admin` reads every secret even where no controller-manager has
// aggregated admin's rules yet.
//
// Only what the RBAC checks need is here: the full content of cluster-admin, admin, edit and view
// (what users bind), and, for the other bootstrap ClusterRoles that hold a grant rbacPrivilege
// judges, that grant, so the API server can keep reconciling them (the list was checked against
// every ClusterRole a v1.34.10 kube-apiserver creates; the e2e suite restarts one through the webhook).

import { RBAC_GROUP, type PolicyRuleView } from './rbac.js';

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'update', 'patch', 'delete', 'deletecollection'];
const READ_WRITE = [...READ, ...WRITE];

function rule(
  verbs: readonly string[],
  apiGroups: readonly string[],
  resources: readonly string[],
): PolicyRuleView {
  return { verbs, apiGroups, resources, resourceNames: [], nonResourceURLs: [], path: [] };
}

/** system:aggregate-to-view: what `view` grants. No secrets, by design. */
const VIEW: readonly PolicyRuleView[] = [
  rule(
    READ,
    [''],
    [
      'pods',
      'replicationcontrollers',
      'replicationcontrollers/scale',
      'serviceaccounts',
      'services',
      'services/status',
      'endpoints',
      'persistentvolumeclaims',
      'persistentvolumeclaims/status',
      'configmaps',
    ],
  ),
  rule(
    READ,
    [''],
    [
      'limitranges',
      'resourcequotas',
      'bindings',
      'events',
      'pods/status',
      'resourcequotas/status',
      'namespaces/status',
      'replicationcontrollers/status',
      'pods/log',
    ],
  ),
  rule(READ, [''], ['namespaces']),
  rule(READ, ['discovery.k8s.io'], ['endpointslices']),
  rule(
    READ,
    ['apps'],
    [
      'controllerrevisions',
      'statefulsets',
      'statefulsets/status',
      'statefulsets/scale',
      'daemonsets',
      'daemonsets/status',
      'deployments',
      'deployments/status',
      'deployments/scale',
      'replicasets',
      'replicasets/status',
      'replicasets/scale',
    ],
  ),
  rule(READ, ['autoscaling'], ['horizontalpodautoscalers', 'horizontalpodautoscalers/status']),
  rule(READ, ['batch'], ['jobs', 'cronjobs', 'cronjobs/status', 'jobs/status']),
  rule(
    READ,
    ['extensions'],
    [
      'daemonsets',
      'daemonsets/status',
      'deployments',
      'deployments/scale',
      'deployments/status',
      'ingresses',
      'ingresses/status',
      'replicasets',
      'replicasets/scale',
      'replicasets/status',
      'replicationcontrollers/scale',
      'networkpolicies',
    ],
  ),
  rule(READ, ['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status']),
  rule(READ, ['networking.k8s.io'], ['networkpolicies', 'ingresses', 'ingresses/status']),
  rule(READ, ['resource.k8s.io'], ['resourceclaims', 'resourceclaims/status', 'resourceclaimtemplates']),
];

/** system:aggregate-to-edit: what `edit` adds to `view`. Secrets, pods, exec, service account tokens. */
const EDIT: readonly PolicyRuleView[] = [
  rule(
    READ,
    [''],
    ['pods/attach', 'pods/proxy', 'pods/exec', 'pods/portforward', 'secrets', 'services/proxy'],
  ),
  rule(['impersonate'], [''], ['serviceaccounts']),
  rule(WRITE, [''], ['pods', 'pods/attach', 'pods/proxy', 'pods/exec', 'pods/portforward']),
  rule(['create'], [''], ['pods/eviction']),
  rule(
    WRITE,
    [''],
    [
      'replicationcontrollers',
      'replicationcontrollers/scale',
      'serviceaccounts',
      'services',
      'services/proxy',
      'persistentvolumeclaims',
      'configmaps',
      'secrets',
      'events',
    ],
  ),
  rule(['create'], [''], ['serviceaccounts/token']),
  rule(
    WRITE,
    ['apps'],
    [
      'statefulsets',
      'statefulsets/scale',
      'daemonsets',
      'deployments',
      'deployments/scale',
      'deployments/rollback',
      'replicasets',
      'replicasets/scale',
    ],
  ),
  rule(WRITE, ['autoscaling'], ['horizontalpodautoscalers']),
  rule(WRITE, ['batch'], ['jobs', 'cronjobs']),
  rule(
    WRITE,
    ['extensions'],
    [
      'daemonsets',
      'deployments',
      'deployments/scale',
      'deployments/rollback',
      'ingresses',
      'replicasets',
      'replicasets/scale',
      'replicationcontrollers/scale',
      'networkpolicies',
    ],
  ),
  rule(WRITE, ['policy'], ['poddisruptionbudgets']),
  rule(WRITE, ['networking.k8s.io'], ['networkpolicies', 'ingresses']),
  rule(READ_WRITE, ['coordination.k8s.io'], ['leases']),
  rule(WRITE, ['resource.k8s.io'], ['resourceclaims', 'resourceclaimtemplates']),
];

/** system:aggregate-to-admin: what `admin` adds to `edit`. Roles and bindings in the namespace. */
const ADMIN: readonly PolicyRuleView[] = [
  rule(['create'], ['authorization.k8s.io'], ['localsubjectaccessreviews']),
  rule(READ_WRITE, [RBAC_GROUP], ['roles', 'rolebindings']),
];

/**
 * Bootstrap ClusterRoles by name, with the rules Portcullis relies on. admin, edit and view are
 * aggregated (admin ← edit ← view through their aggregate-to-* labels): their rules are the union.
 */
export const BOOTSTRAP_CLUSTER_ROLES: ReadonlyMap<string, readonly PolicyRuleView[]> = new Map([
  ['cluster-admin', [rule(['*'], ['*'], ['*'])]],
  ['admin', [...ADMIN, ...EDIT, ...VIEW]],
  ['edit', [...EDIT, ...VIEW]],
  ['view', VIEW],
  ['system:aggregate-to-admin', ADMIN],
  ['system:aggregate-to-edit', EDIT],
  ['system:aggregate-to-view', VIEW],
  // The kubelet API of every node, for the API server's own calls to kubelets.
  [
    'system:kubelet-api-admin',
    [rule(['*'], [''], ['nodes/proxy', 'nodes/metrics', 'nodes/stats', 'nodes/log'])],
  ],
  // Writes the aggregated rules into admin, edit, view and any other aggregated ClusterRole.
  [
    'system:controller:clusterrole-aggregation-controller',
    [rule(['escalate', 'get', 'list', 'watch', 'update', 'patch'], [RBAC_GROUP], ['clusterroles'])],
  ],
  // Behind the StorageVersionMigrator feature gate: server-side applies any resource.
  [
    'system:controller:storage-version-migrator-controller',
    [rule(['list', 'watch', 'create', 'patch'], ['*'], ['*'])],
  ],
  // Delete what lost its owner, or its namespace, whatever it is.
  [
    'system:controller:generic-garbage-collector',
    [rule(['delete', 'get', 'list', 'patch', 'update', 'watch'], ['*'], ['*'])],
  ],
  [
    'system:controller:namespace-controller',
    [rule(['delete', 'deletecollection', 'get', 'list', 'watch'], ['*'], ['*'])],
  ],
  // Tokens for the controllers' service accounts, and for the pods a kubelet runs.
  ['system:kube-controller-manager', [rule(['create'], [''], ['serviceaccounts/token'])]],
  ['system:node', [rule(['create'], [''], ['serviceaccounts/token'])]],
  // Approving CSRs: the controller, and one approver role per built-in signer (bound by no one).
  [
    'system:controller:certificate-controller',
    [
      rule(
        ['update'],
        ['certificates.k8s.io'],
        ['certificatesigningrequests/approval', 'certificatesigningrequests/status'],
      ),
      rule(['approve'], ['certificates.k8s.io'], ['signers']),
    ],
  ],
  ...['kube-apiserver-client', 'kube-apiserver-client-kubelet', 'kubelet-serving', 'legacy-unknown'].map(
    (signer): [string, readonly PolicyRuleView[]] => [
      `system:certificates.k8s.io:${signer}-approver`,
      [rule(['approve'], ['certificates.k8s.io'], ['signers'])],
    ],
  ),
]);

export interface BootstrapSubject {
  kind: string;
  name: string;
  namespace?: string;
}

const group = (name: string): BootstrapSubject => ({ kind: 'Group', name });
const user = (name: string): BootstrapSubject => ({ kind: 'User', name });
const kubeSystem = (name: string): BootstrapSubject => ({
  kind: 'ServiceAccount',
  name,
  namespace: 'kube-system',
});

/**
 * Bootstrap ClusterRoleBindings (each binds the ClusterRole of its own name) and their subjects.
 * The discovery ones are granted to everybody on purpose: every client must be able to discover
 * the API and check its own access.
 */
export const BOOTSTRAP_CLUSTER_ROLE_BINDINGS: ReadonlyMap<string, readonly BootstrapSubject[]> = new Map([
  ['cluster-admin', [group('system:masters')]],
  ['system:monitoring', [group('system:monitoring')]],
  ['system:discovery', [group('system:authenticated')]],
  ['system:basic-user', [group('system:authenticated')]],
  ['system:public-info-viewer', [group('system:authenticated'), group('system:unauthenticated')]],
  ['system:node-proxier', [user('system:kube-proxy')]],
  ['system:kube-controller-manager', [user('system:kube-controller-manager')]],
  ['system:kube-dns', [kubeSystem('kube-dns')]],
  ['system:kube-scheduler', [user('system:kube-scheduler')]],
  ['system:volume-scheduler', [user('system:kube-scheduler')]],
  ['system:node', []],
  ['system:service-account-issuer-discovery', [group('system:serviceaccounts')]],
  ['system:cluster-trust-bundle-discovery', [group('system:serviceaccounts')]],
]);

const CONTROLLER_PREFIX = 'system:controller:';

/**
 * Whether `subject` is one the bootstrap policy itself gives in the ClusterRoleBinding `name` (of
 * the ClusterRole of the same name). Each controller's binding `system:controller:X` binds the
 * ServiceAccount kube-system/X.
 */
export function isBootstrapSubject(name: string, subject: BootstrapSubject): boolean {
  if (name.startsWith(CONTROLLER_PREFIX)) {
    return (
      subject.kind === 'ServiceAccount' &&
      subject.namespace === 'kube-system' &&
      subject.name === name.slice(CONTROLLER_PREFIX.length)
    );
  }
  return (BOOTSTRAP_CLUSTER_ROLE_BINDINGS.get(name) ?? []).some(
    (s) => s.kind === subject.kind && s.name === subject.name && s.namespace === subject.namespace,
  );
}
