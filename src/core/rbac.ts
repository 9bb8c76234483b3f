// Reads RoleBindings and ClusterRoleBindings (rbac.authorization.k8s.io) for the binding checks.

import { asObject, optList, optObject, optString, optStringList, reqObject, reqString } from './read.js';
import { defineTarget } from './target.js';
import type { FieldPath } from './types.js';

export const RBAC_GROUP = 'rbac.authorization.k8s.io';
export const BINDING_KINDS: readonly string[] = ['RoleBinding', 'ClusterRoleBinding'];

export interface SubjectView {
  kind: string;
  name: string;
  namespace: string | undefined;
  path: FieldPath;
}

export interface BindingView {
  kind: string;
  name: string;
  /** '' for a ClusterRoleBinding. */
  namespace: string;
  roleRef: { kind: string; name: string };
  subjects: readonly SubjectView[];
}

export function isBindingKind(group: string, kind: string): boolean {
  return group === RBAC_GROUP && BINDING_KINDS.includes(kind);
}

/** RoleBindings and ClusterRoleBindings. */
export const BINDING_TARGET = defineTarget<BindingView>({
  id: 'binding',
  operations: ['CREATE', 'UPDATE'],
  accepts: (request) =>
    (request.subResource ?? '') === '' && isBindingKind(request.kind.group, request.kind.kind),
  read: (object, request) => readBinding(object, request.kind.kind, request.namespace ?? '', request.name),
  judgedPart: (binding) => binding,
});

/**
 * `namespace` is the binding's own ('' for a ClusterRoleBinding): a ServiceAccount subject of a
 * RoleBinding that names no namespace is the one in the binding's namespace, as the RBAC authorizer
 * reads it.
 */
export function readBinding(object: unknown, kind: string, namespace: string, name?: string): BindingView {
  const binding = asObject(object, []);
  const roleRef = reqObject(binding, 'roleRef', []);
  const metadata = optObject(binding, 'metadata', []) ?? {};
  return {
    kind,
    name: optString(metadata, 'name', ['metadata']) ?? name ?? '',
    namespace,
    roleRef: {
      kind: optString(roleRef, 'kind', ['roleRef']) ?? '',
      name: optString(roleRef, 'name', ['roleRef']) ?? '',
    },
    subjects: optList(binding, 'subjects', []).map((raw, index): SubjectView => {
      const path = ['subjects', index];
      const subject = asObject(raw, path);
      const subjectKind = optString(subject, 'kind', path) ?? '';
      const own = optString(subject, 'namespace', path);
      const inherits =
        kind === 'RoleBinding' && own === undefined && subjectKind === 'ServiceAccount' && namespace !== '';
      return {
        kind: subjectKind,
        name: optString(subject, 'name', path) ?? '',
        namespace: inherits ? namespace : own,
        path,
      };
    }),
  };
}

// --- Roles ---------------------------------------------------------------------------------------

export const ROLE_KINDS: readonly string[] = ['Role', 'ClusterRole'];

/** The label that makes a ClusterRole part of a bootstrap aggregated role, and the role it lands in. */
export const AGGREGATION_LABELS: ReadonlyMap<string, string> = new Map([
  ['rbac.authorization.k8s.io/aggregate-to-admin', 'admin'],
  ['rbac.authorization.k8s.io/aggregate-to-edit', 'edit'],
  ['rbac.authorization.k8s.io/aggregate-to-view', 'view'],
]);

/** One entry of a role's `rules`, every list present (empty when absent). */
export interface PolicyRuleView {
  verbs: readonly string[];
  apiGroups: readonly string[];
  resources: readonly string[];
  resourceNames: readonly string[];
  nonResourceURLs: readonly string[];
  path: FieldPath;
}

export interface LabelSelectorView {
  matchLabels: Readonly<Record<string, string>>;
  matchExpressions: readonly { key: string; operator: string; values: readonly string[] }[];
}

export interface RoleView {
  kind: string;
  name: string;
  /** '' for a ClusterRole. */
  namespace: string;
  labels: Readonly<Record<string, string>>;
  rules: readonly PolicyRuleView[];
  /** A ClusterRole's `aggregationRule.clusterRoleSelectors`; undefined when it has none. */
  aggregation: readonly LabelSelectorView[] | undefined;
}

export function isRoleKind(group: string, kind: string): boolean {
  return group === RBAC_GROUP && ROLE_KINDS.includes(kind);
}

/** Roles and ClusterRoles. */
export const ROLE_TARGET = defineTarget<RoleView>({
  id: 'role',
  operations: ['CREATE', 'UPDATE'],
  accepts: (request) =>
    (request.subResource ?? '') === '' && isRoleKind(request.kind.group, request.kind.kind),
  read: (object, request) => readRole(object, request.kind.kind, request.namespace ?? '', request.name),
  // What the role grants and where it is aggregated: a relabel that adds an aggregation label is a
  // change worth judging, an annotation or a managedFields write is not.
  judgedPart: (role) => ({
    rules: role.rules,
    aggregation: role.aggregation,
    labels: [...AGGREGATION_LABELS.keys()].map((key) => role.labels[key]),
  }),
});

/**
 * `namespace` is the role's own ('' for a ClusterRole); `name` the request's, for a CREATE whose
 * object has only a generateName.
 */
export function readRole(object: unknown, kind: string, namespace: string, name?: string): RoleView {
  const role = asObject(object, []);
  const metadata = optObject(role, 'metadata', []) ?? {};
  const labelsObject = optObject(metadata, 'labels', ['metadata']) ?? {};
  const labels: Record<string, string> = {};
  for (const key of Object.keys(labelsObject)) {
    labels[key] = optString(labelsObject, key, ['metadata', 'labels']) ?? '';
  }
  const aggregationRule = optObject(role, 'aggregationRule', []);
  return {
    kind,
    name: optString(metadata, 'name', ['metadata']) ?? name ?? '',
    namespace,
    labels,
    rules: optList(role, 'rules', []).map((raw, index): PolicyRuleView => {
      const path = ['rules', index];
      const rule = asObject(raw, path);
      return {
        verbs: optStringList(rule, 'verbs', path),
        apiGroups: optStringList(rule, 'apiGroups', path),
        resources: optStringList(rule, 'resources', path),
        resourceNames: optStringList(rule, 'resourceNames', path),
        nonResourceURLs: optStringList(rule, 'nonResourceURLs', path),
        path,
      };
    }),
    aggregation:
      aggregationRule === undefined
        ? undefined
        : optList(aggregationRule, 'clusterRoleSelectors', ['aggregationRule']).map((raw, index) =>
            readLabelSelector(raw, ['aggregationRule', 'clusterRoleSelectors', index]),
          ),
  };
}

function readLabelSelector(raw: unknown, path: FieldPath): LabelSelectorView {
  const selector = asObject(raw, path);
  const matchLabelsObject = optObject(selector, 'matchLabels', path) ?? {};
  const matchLabels: Record<string, string> = {};
  for (const key of Object.keys(matchLabelsObject)) {
    matchLabels[key] = optString(matchLabelsObject, key, [...path, 'matchLabels']) ?? '';
  }
  return {
    matchLabels,
    matchExpressions: optList(selector, 'matchExpressions', path).map((item, i) => {
      const at = [...path, 'matchExpressions', i];
      const expression = asObject(item, at);
      return {
        key: reqString(expression, 'key', at),
        operator: reqString(expression, 'operator', at),
        values: optStringList(expression, 'values', at),
      };
    }),
  };
}
