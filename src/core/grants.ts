// What a role grants, read the way the RBAC authorizer reads a PolicyRule: a verb, an API group and
// a resource each match exactly or through `*`, and a resource `*/exec` matches the exec subresource
// of any resource. resourceNames never narrow the judgement: `bind` on the one role named
// cluster-admin is `bind` on cluster-admin. Shared by the role check (rbacPrivilege) and the
// binding check (clusterAdminBinding), so both read a rule alike.

import { BOOTSTRAP_CLUSTER_ROLES } from './bootstrap.js';
import { AGGREGATION_LABELS, RBAC_GROUP, readRole, type PolicyRuleView, type RoleView } from './rbac.js';
import { readObject } from './read.js';
import { selectorMatches } from './selector.js';

/**
 * The ClusterRoles the caller could see: `serve` keeps the API server's in a watched cache,
 * `check` takes those of its input. Given to `evaluate` in `EvaluationContext.roles`.
 */
export interface RoleLookup {
  clusterRole(name: string): RoleView | undefined;
  /** Every ClusterRole, for aggregation selectors. */
  clusterRoles(): Iterable<RoleView>;
}

/** ClusterRoles by name: what `serve`'s watch and `check`'s input fill. */
export class RoleIndex implements RoleLookup {
  readonly #byName = new Map<string, RoleView>();

  set(role: RoleView): void {
    this.#byName.set(role.name, role);
  }

  /**
   * Reads a ClusterRole object (from the API server or an input file) and keeps it; false, and
   * nothing kept, when it cannot be read: a malformed role grants nothing Portcullis could judge.
   */
  add(object: unknown): boolean {
    const read = readObject(() => readRole(object, 'ClusterRole', ''));
    if (read.ok) this.set(read.value);
    return read.ok;
  }

  delete(name: string): void {
    this.#byName.delete(name);
  }

  clear(): void {
    this.#byName.clear();
  }

  get size(): number {
    return this.#byName.size;
  }

  clusterRole(name: string): RoleView | undefined {
    return this.#byName.get(name);
  }

  clusterRoles(): Iterable<RoleView> {
    return this.#byName.values();
  }
}

export const CORE_GROUP = '';

/** Whether `rule` lets its holder do `verb` on `resource` (`pods` or `pods/exec`) in `group`. */
export function covers(rule: PolicyRuleView, verb: string, group: string, resource: string): boolean {
  if (!rule.verbs.includes('*') && !rule.verbs.includes(verb)) return false;
  if (!rule.apiGroups.includes('*') && !rule.apiGroups.includes(group)) return false;
  const slash = resource.indexOf('/');
  const subresource = slash === -1 ? '' : resource.slice(slash + 1);
  return rule.resources.some(
    (r) => r === '*' || r === resource || (subresource !== '' && r === `*/${subresource}`),
  );
}

/** `* on *` in every API group: the whole API, which is what cluster-admin grants. */
export function isFullWildcard(rule: PolicyRuleView): boolean {
  return rule.verbs.includes('*') && rule.resources.includes('*') && rule.apiGroups.includes('*');
}

/** One dangerous thing a rule grants; `key` identifies it across roles (for the bootstrap roles). */
export interface Grant {
  key: string;
  /** `* on *`, `escalate on clusterroles`, … */
  text: string;
}

const ESCALATING: readonly (readonly [verb: string, group: string, resource: string])[] = [
  ['escalate', RBAC_GROUP, 'clusterroles'],
  ['escalate', RBAC_GROUP, 'roles'],
  ['bind', RBAC_GROUP, 'clusterroles'],
  ['bind', RBAC_GROUP, 'roles'],
  ['impersonate', CORE_GROUP, 'users'],
  ['impersonate', CORE_GROUP, 'groups'],
  ['impersonate', CORE_GROUP, 'serviceaccounts'],
];

const CERTIFICATES_GROUP = 'certificates.k8s.io';

/**
 * Dangerous only when granted in every namespace (in a ClusterRole, which may be bound
 * cluster-wide), or on cluster-scoped objects, which a Role cannot grant at all. Each is a way to
 * act as someone more powerful: a shell in any pod (exec, or `kubectl debug`'s ephemeral container),
 * any node's kubelet, a token for any service account (kube-system's controllers included), or a
 * client certificate for any identity (approving CSRs for the kube-apiserver-client signer).
 */
const CLUSTER_WIDE: readonly (readonly [verb: string, group: string, resource: string])[] = [
  ['create', CORE_GROUP, 'pods/exec'],
  ['patch', CORE_GROUP, 'pods/ephemeralcontainers'],
  ['update', CORE_GROUP, 'pods/ephemeralcontainers'],
  ['create', CORE_GROUP, 'nodes/proxy'],
  ['create', CORE_GROUP, 'serviceaccounts/token'],
  ['approve', CERTIFICATES_GROUP, 'signers'],
  ['update', CERTIFICATES_GROUP, 'certificatesigningrequests/approval'],
  ['patch', CERTIFICATES_GROUP, 'certificatesigningrequests/approval'],
];

/**
 * The objects that configure admission. Admission webhooks are never called for these (the API
 * server exempts them so it cannot lock itself out), so RBAC is the only guard: who may write or
 * delete them may switch Portcullis off, or add a webhook that is sent every Secret.
 */
const ADMISSION_GROUP = 'admissionregistration.k8s.io';
const ADMISSION_CONFIGURATIONS = [
  'validatingwebhookconfigurations',
  'mutatingwebhookconfigurations',
  'validatingadmissionpolicies',
  'validatingadmissionpolicybindings',
  'mutatingadmissionpolicies',
  'mutatingadmissionpolicybindings',
] as const;
const ADMISSION_WRITES = ['create', 'update', 'patch', 'delete', 'deletecollection'] as const;

/**
 * `update, patch on validatingwebhookconfigurations, …` for a ClusterRole rule that may write
 * admission configurations, or undefined. A rule naming its configurations (resourceNames) is how a
 * product keeps its own webhook's caBundle or rules up to date (Portcullis' own role does): it
 * reaches only the objects named, and grants no create at all (a create carries no name when it is
 * authorized). Naming Portcullis' own configurations passes too; RBAC's escalation check (a role
 * can only be written by whoever already holds what it grants) is what guards that.
 */
function admissionWrites(rule: PolicyRuleView): Grant | undefined {
  if (rule.resourceNames.length > 0) return undefined;
  const resources = ADMISSION_CONFIGURATIONS.filter((resource) =>
    ADMISSION_WRITES.some((verb) => covers(rule, verb, ADMISSION_GROUP, resource)),
  );
  if (resources.length === 0) return undefined;
  const verbs = ADMISSION_WRITES.filter((verb) =>
    resources.some((resource) => covers(rule, verb, ADMISSION_GROUP, resource)),
  );
  return {
    key: `admission ${verbs.join(',')} ${resources.join(',')}`,
    text: `${verbs.join(', ')} on ${resources.join(', ')} (admission can be switched off)`,
  };
}

const grant = (verb: string, group: string, resource: string): Grant => ({
  key: `${verb} ${group === '' ? 'core' : group}/${resource}`,
  text: `${verb} on ${resource}`,
});

/**
 * What one rule of a role grants that Portcullis judges: the full wildcard (alone: it includes the
 * rest), `* on *` in the core group, escalate/bind on roles, impersonation, and — in a ClusterRole —
 * the CLUSTER_WIDE grants and writes to admission configurations; in a role aggregated into `view`,
 * reading secrets.
 */
export function dangerousGrants(rule: PolicyRuleView, role: RoleView): Grant[] {
  if (isFullWildcard(rule)) {
    const text = role.kind === 'ClusterRole' ? 'cluster-admin in effect' : 'everything in its namespace';
    return [{ key: 'wildcard', text: `* on * (${text})` }];
  }
  const found: Grant[] = [];
  // `* on *` in the core group includes every core-group grant below: it is named alone.
  const coreWildcard =
    rule.verbs.includes('*') && rule.resources.includes('*') && rule.apiGroups.includes(CORE_GROUP);
  if (coreWildcard) found.push({ key: 'wildcard core', text: '* on * in the core API group' });
  const candidates = role.kind === 'ClusterRole' ? [...ESCALATING, ...CLUSTER_WIDE] : ESCALATING;
  for (const [verb, group, resource] of candidates) {
    if (coreWildcard && group === CORE_GROUP) continue;
    if (covers(rule, verb, group, resource)) found.push(grant(verb, group, resource));
  }
  const admission = role.kind === 'ClusterRole' ? admissionWrites(rule) : undefined;
  if (admission !== undefined) found.push(admission);
  if (role.kind === 'ClusterRole' && role.labels['rbac.authorization.k8s.io/aggregate-to-view'] === 'true') {
    const read = ['get', 'list', 'watch'].find((verb) => covers(rule, verb, CORE_GROUP, 'secrets'));
    if (read !== undefined && !coreWildcard) found.push(grant(read, CORE_GROUP, 'secrets'));
  }
  return found;
}

/** The bootstrap aggregated roles this ClusterRole's labels add its rules to, in label order. */
export function aggregatedInto(role: RoleView): string[] {
  if (role.kind !== 'ClusterRole') return [];
  return [...AGGREGATION_LABELS]
    .filter(([label]) => role.labels[label] === 'true')
    .map(([, target]) => target);
}

/** Aggregation through aggregation rarely goes deeper than admin ← edit ← view; this bounds a cycle. */
const MAX_AGGREGATION_DEPTH = 8;

/**
 * Every rule a ClusterRole grants: its own rules, those of the ClusterRoles its aggregationRule
 * selects (what the controller-manager would write into it; a control plane without one, or a
 * role just created, has not yet), and, for the bootstrap roles, what Kubernetes' bootstrap policy
 * puts in them (the API server restores it at every start). Undefined when the role is neither
 * visible nor a bootstrap role: what it grants is not known.
 */
export function clusterRoleRules(
  name: string,
  lookup: RoleLookup | undefined,
): readonly PolicyRuleView[] | undefined {
  const live = lookup?.clusterRole(name);
  const bootstrap = BOOTSTRAP_CLUSTER_ROLES.get(name);
  if (live === undefined && bootstrap === undefined) return undefined;
  const rules: PolicyRuleView[] = [...(bootstrap ?? [])];
  if (live !== undefined && lookup !== undefined) collect(live, lookup, new Set(), 0, rules);
  return rules;
}

function collect(
  role: RoleView,
  lookup: RoleLookup,
  seen: Set<string>,
  depth: number,
  into: PolicyRuleView[],
): void {
  if (seen.has(role.name) || depth > MAX_AGGREGATION_DEPTH) return;
  seen.add(role.name);
  into.push(...role.rules);
  const selectors = role.aggregation;
  if (selectors === undefined || selectors.length === 0) return;
  for (const other of lookup.clusterRoles()) {
    if (other.name === role.name || seen.has(other.name)) continue;
    if (selectors.some((selector) => selectorMatches(selector, other.labels))) {
      collect(other, lookup, seen, depth + 1, into);
    }
  }
}

/** The first of get/list/watch on secrets the rules grant, as `get on secrets`. */
export function secretsRead(rules: readonly PolicyRuleView[]): string | undefined {
  for (const verb of ['get', 'list', 'watch']) {
    if (rules.some((rule) => covers(rule, verb, CORE_GROUP, 'secrets'))) return `${verb} on secrets`;
  }
  return undefined;
}

export function createsPods(rules: readonly PolicyRuleView[]): boolean {
  return rules.some((rule) => covers(rule, 'create', CORE_GROUP, 'pods'));
}
