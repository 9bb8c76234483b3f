// The API resources behind the kinds the rules judge: what `scan` lists and which audit events
// `replay` judges. Derived from the rules in force (a RuleSet of pod rules only has no business
// listing RoleBindings) and from the core's own kind lists, through `kindsJudgedBy` alone, so a new
// target kind in the core changes this one function.

import { POD_TEMPLATE_KINDS, type CompiledRuleSet } from '../core/index.js';
import { BINDING_KINDS, RBAC_GROUP } from '../core/rbac.js';

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

/** The resources of the kinds Portcullis knows, keyed by `group/Kind` as the core's lists are. */
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

/** The resource of a kind Portcullis knows; undefined for any other kind. */
export function apiResourceOfKind(group: string, kind: string): ApiResource | undefined {
  return API_RESOURCES.get(`${group}/${kind}`);
}

const KINDS_OF_TARGET = {
  pod: POD_TEMPLATE_KINDS,
  binding: BINDING_KINDS.map((kind) => `${RBAC_GROUP}/${kind}`),
} as const;

/** What a rule judges: `pod` (pods and pod templates) or `binding`. */
export type RuleTarget = CompiledRuleSet['rules'][number]['compiled']['target'];

export interface JudgedResource extends ApiResource {
  /** The rules of this target judge its objects. */
  target: RuleTarget;
}

/** The resources holding objects some rule of `ruleset` judges, in the core's order. */
export function kindsJudgedBy(ruleset: CompiledRuleSet): JudgedResource[] {
  const targets = new Set(ruleset.rules.map((rule) => rule.compiled.target));
  const kinds: JudgedResource[] = [];
  for (const target of ['pod', 'binding'] as const) {
    if (!targets.has(target)) continue;
    for (const key of KINDS_OF_TARGET[target]) {
      const known = API_RESOURCES.get(key);
      // A kind the core judges but this table lacks would be silently never scanned: a bug.
      if (known === undefined) throw new Error(`no API resource known for judged kind ${key}`);
      kinds.push({ ...known, target });
    }
  }
  return kinds;
}

/** `pods`, `deployments.apps`: how kubectl names a resource. */
export function resourceLabel(r: Pick<ApiResource, 'group' | 'resource'>): string {
  return r.group === '' ? r.resource : `${r.resource}.${r.group}`;
}
