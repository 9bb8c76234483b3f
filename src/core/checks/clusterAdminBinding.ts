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
 * By what the role grants (each off unless its param is true; the shipped RuleSet turns all on),
 * for every subject not in `allowedSubjects`:
 * - denyClusterAdminInEffect: a roleRef ClusterRole that grants `*` on `*` in every API group;
 * - denyClusterWideSecretsAndPods: a ClusterRoleBinding of a ClusterRole that reads secrets
 *   (get, list or watch) or creates pods: in every namespace, that is kube-system's secrets and
 *   service accounts, cluster-admin one step later (bootstrap `admin` and `edit` do both);
 * - denyEverybody: any role granted to Group system:authenticated, system:unauthenticated or
 *   system:serviceaccounts, or to User system:anonymous.
 * What a ClusterRole grants comes from `context.roles` (its rules plus those its aggregationRule
 * selects) and, for Kubernetes' bootstrap roles, from their bootstrap policy (src/core/bootstrap.ts).
 * A roleRef Portcullis knows neither way is reported (at most a warning), not guessed. The
 * bootstrap ClusterRoleBindings' own subjects (system:discovery to system:authenticated, each
 * controller's ServiceAccount, …) are not judged by what their role grants.
 * Versions: v1.0.
 * Params: roles (default ["cluster-admin"]); allowedSubjects: [{kind, name, namespace?}] (default none);
 * denyClusterAdminInEffect, denyClusterWideSecretsAndPods, denyEverybody (booleans, default false).
 */

import { isBootstrapSubject } from '../bootstrap.js';
import { defineCheck, type Finding } from '../check.js';
import { clusterRoleRules, createsPods, isFullWildcard, secretsRead } from '../grants.js';
import { BINDING_TARGET, type BindingView, type SubjectView } from '../rbac.js';

interface SubjectRef {
  kind: 'User' | 'Group' | 'ServiceAccount';
  name: string;
  namespace?: string;
}

interface Params {
  roles: string[];
  allowedSubjects: SubjectRef[];
  denyClusterAdminInEffect: boolean;
  denyClusterWideSecretsAndPods: boolean;
  denyEverybody: boolean;
}

/** The subjects every request of some kind carries, and who that is. */
const EVERYBODY: readonly { kind: string; name: string; who: string }[] = [
  { kind: 'Group', name: 'system:authenticated', who: 'every authenticated user' },
  { kind: 'Group', name: 'system:unauthenticated', who: 'every anonymous request' },
  { kind: 'Group', name: 'system:serviceaccounts', who: 'every service account' },
  { kind: 'User', name: 'system:anonymous', who: 'every anonymous request' },
];

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
      denyClusterAdminInEffect: { type: 'boolean', default: false },
      denyClusterWideSecretsAndPods: { type: 'boolean', default: false },
      denyEverybody: { type: 'boolean', default: false },
    },
  },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: (params) => {
        const roles = new Set(params.roles);
        const isAllowed = (subject: SubjectView): boolean =>
          params.allowedSubjects.some(
            (a) =>
              a.kind === subject.kind &&
              a.name === subject.name &&
              (a.namespace === undefined || a.namespace === subject.namespace),
          );
        const needsRules = params.denyClusterAdminInEffect || params.denyClusterWideSecretsAndPods;
        return (binding, { context }) => {
          const byName = binding.roleRef.kind === 'ClusterRole' && roles.has(binding.roleRef.name);
          const subjects = binding.subjects.filter((subject) => !isAllowed(subject));
          if (byName) {
            return subjects.map((subject) => ({
              path: subject.path,
              message: `${binding.kind} must not grant ClusterRole "${binding.roleRef.name}" to ${describeSubject(subject)}`,
            }));
          }
          // The bootstrap bindings' own subjects: the API server writes them at every start.
          const judged = subjects.filter((subject) => !isBootstrapBinding(binding, subject));
          if (judged.length === 0) return [];
          const prefix = describeBinding(binding);
          const ref = `roleRef ${binding.roleRef.kind} "${binding.roleRef.name}"`;

          const findings: Finding[] = [];
          let grants: string | undefined;
          if (needsRules && binding.roleRef.kind === 'ClusterRole') {
            const rules = clusterRoleRules(binding.roleRef.name, context.roles);
            if (rules === undefined) {
              findings.push({
                path: ['roleRef'],
                message: `${prefix}: ${ref} is not known to Portcullis (not in the cluster, the input or the bootstrap policy), so what it grants was not judged`,
                notice: true,
              });
            } else if (params.denyClusterAdminInEffect && rules.some(isFullWildcard)) {
              grants = '* on * (cluster-admin in effect)';
            } else if (params.denyClusterWideSecretsAndPods && binding.kind === 'ClusterRoleBinding') {
              const what = [secretsRead(rules), createsPods(rules) ? 'create on pods' : undefined].filter(
                (g) => g !== undefined,
              );
              if (what.length > 0) grants = `${what.join(' and ')} in every namespace`;
            }
          }
          for (const subject of judged) {
            if (grants !== undefined) {
              findings.push({
                path: subject.path,
                message: `${prefix}: ${ref} grants ${grants} to ${describeSubject(subject)}`,
              });
              continue;
            }
            const everybody = params.denyEverybody
              ? EVERYBODY.find((e) => e.kind === subject.kind && e.name === subject.name)
              : undefined;
            if (everybody !== undefined) {
              findings.push({
                path: subject.path,
                message: `${prefix}: ${ref} is granted to ${describeSubject(subject)}, which is ${everybody.who}`,
              });
            }
          }
          return findings;
        };
      },
    },
  ],
});

function describeSubject(subject: SubjectView): string {
  const ns = subject.namespace === undefined ? '' : ` in namespace "${subject.namespace}"`;
  return `${subject.kind} "${subject.name}"${ns}`;
}

function describeBinding(binding: BindingView): string {
  return binding.kind === 'RoleBinding'
    ? `RoleBinding "${binding.name}" in namespace "${binding.namespace}"`
    : `ClusterRoleBinding "${binding.name}"`;
}

/** A subject the bootstrap policy gives this ClusterRoleBinding, which binds the ClusterRole of its name. */
function isBootstrapBinding(binding: BindingView, subject: SubjectView): boolean {
  return (
    binding.kind === 'ClusterRoleBinding' &&
    binding.roleRef.kind === 'ClusterRole' &&
    binding.roleRef.name === binding.name &&
    isBootstrapSubject(binding.name, subject)
  );
}
