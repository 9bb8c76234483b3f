// Reads RoleBindings and ClusterRoleBindings (rbac.authorization.k8s.io) for the binding checks.

import { asObject, optList, optString, reqObject } from './read.js';
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
  read: (object, request) => readBinding(object, request.kind.kind, request.namespace ?? ''),
  judgedPart: (binding) => binding,
});

/**
 * `namespace` is the binding's own ('' for a ClusterRoleBinding): a ServiceAccount subject of a
 * RoleBinding that names no namespace is the one in the binding's namespace, as the RBAC authorizer
 * reads it.
 */
export function readBinding(object: unknown, kind: string, namespace: string): BindingView {
  const binding = asObject(object, []);
  const roleRef = reqObject(binding, 'roleRef', []);
  return {
    kind,
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
