// The API resources behind the kinds the rules judge: what `scan` lists and which audit events
// `replay` judges. Derived from the rules in force (a RuleSet of pod rules only has no business
// listing RoleBindings) by asking each rule's target whether it reads a create of the kind, so a
// new target in the core needs no change here beyond its kinds' resource names below.

import type { AdmissionRequest, CompiledRuleSet } from '../core/index.js';

export interface ApiResource {
  group: string;
  /** The version `scan` lists (the one every supported Kubernetes serves). */
  version: string;
  kind: string;
  /** The plural in request paths and in an audit event's `objectRef.resource`. */
  resource: string;
  namespaced: boolean;
}

const resource = (group: string, version: string, kind: string, plural: string, namespaced = true) => ({
  group,
  version,
  kind,
  resource: plural,
  namespaced,
});

const RBAC_GROUP = 'rbac.authorization.k8s.io';

/**
 * The built-in resources whose objects a rule may judge (every kind a target of the core reads
 * must be here, or `scan` would never list it: test/cli/scan.test.ts holds the core to that).
 */
const API_RESOURCES: ReadonlyMap<string, ApiResource> = new Map(
  [
    resource('', 'v1', 'Pod', 'pods'),
    resource('', 'v1', 'PodTemplate', 'podtemplates'),
    resource('', 'v1', 'ReplicationController', 'replicationcontrollers'),
    resource('apps', 'v1', 'Deployment', 'deployments'),
    resource('apps', 'v1', 'DaemonSet', 'daemonsets'),
    resource('apps', 'v1', 'StatefulSet', 'statefulsets'),
    resource('apps', 'v1', 'ReplicaSet', 'replicasets'),
    resource('batch', 'v1', 'Job', 'jobs'),
    resource('batch', 'v1', 'CronJob', 'cronjobs'),
    resource(RBAC_GROUP, 'v1', 'RoleBinding', 'rolebindings'),
    resource(RBAC_GROUP, 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
    resource('', 'v1', 'ConfigMap', 'configmaps'),
  ].map((r) => [`${r.group}/${r.kind}`, r]),
);

/** The request that creates an object of `resource`: what a target is asked whether it reads. */
function createOf(r: ApiResource): AdmissionRequest {
  return {
    uid: '',
    kind: { group: r.group, version: r.version, kind: r.kind },
    resource: { group: r.group, version: r.version, resource: r.resource },
    ...(r.namespaced ? { namespace: 'default' } : {}),
    operation: 'CREATE',
    userInfo: {},
  };
}

/** The resources holding objects some rule of `ruleset` judges. */
export function kindsJudgedBy(ruleset: CompiledRuleSet): ApiResource[] {
  const targets = [...new Set(ruleset.rules.map((rule) => rule.compiled.target))];
  return [...API_RESOURCES.values()].filter((r) => {
    const create = createOf(r);
    return targets.some((target) => target.accepts(create));
  });
}

/** `pods`, `deployments.apps`: how kubectl names a resource. */
export function resourceLabel(r: Pick<ApiResource, 'group' | 'resource'>): string {
  return r.group === '' ? r.resource : `${r.resource}.${r.group}`;
}
