/*
 * Check: clusterAdminBinding
 *
 * A binding to cluster-admin hands over the whole cluster; a careless one is the quietest way in.
 *
 * Objects: RoleBinding and ClusterRoleBinding (rbac.authorization.k8s.io).
 * Fields read: roleRef.kind, roleRef.name, subjects[*].{kind,name,namespace}
 * Denied: a binding whose roleRef is a ClusterRole named in `roles`, unless every subject is in
 * `allowedSubjects`. A namespaced Role that happens to be called "cluster-admin" is not the
 * ClusterRole and is not matched. An allowedSubjects entry without `namespace` matches the subject
 * in any namespace. A ServiceAccount subject of a RoleBinding that names no namespace is the one in
 * the binding's namespace (as the RBAC authorizer reads it).
 * Versions: v1.0.
 * Params: roles (default ["cluster-admin"]); allowedSubjects: [{kind, name, namespace?}] (default none).
 */

import { defineCheck, type Finding } from '../check.js';
import { BINDING_TARGET, type BindingView } from '../rbac.js';

interface SubjectRef {
  kind: 'User' | 'Group' | 'ServiceAccount';
  name: string;
  namespace?: string;
}

interface Params {
  roles: string[];
  allowedSubjects: SubjectRef[];
}

export const clusterAdminBinding = defineCheck<Params, BindingView>({
  id: 'clusterAdminBinding',
  target: BINDING_TARGET,
  summary: 'Bindings to the cluster-admin ClusterRole are denied unless every subject is allowed.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      roles: {
        type: 'array',
        minItems: 1,
        default: ['cluster-admin'],
        items: { type: 'string', minLength: 1 },
      },
      allowedSubjects: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'name'],
          properties: {
            kind: { enum: ['User', 'Group', 'ServiceAccount'] },
            name: { type: 'string', minLength: 1 },
            namespace: { type: 'string', minLength: 1 },
          },
        },
      },
    },
  },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: (params) => {
        const roles = new Set(params.roles);
        return (binding) => {
          if (binding.roleRef.kind !== 'ClusterRole' || !roles.has(binding.roleRef.name)) return [];
          const findings: Finding[] = [];
          for (const subject of binding.subjects) {
            const allowed = params.allowedSubjects.some(
              (a) =>
                a.kind === subject.kind &&
                a.name === subject.name &&
                (a.namespace === undefined || a.namespace === subject.namespace),
            );
            if (!allowed) {
              const ns = subject.namespace === undefined ? '' : ` in namespace "${subject.namespace}"`;
              findings.push({
                path: subject.path,
                message: `${binding.kind} must not grant ClusterRole "${binding.roleRef.name}" to ${subject.kind} "${subject.name}"${ns}`,
              });
            }
          }
          return findings;
        };
      },
    },
  ],
});
