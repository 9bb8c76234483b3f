/*
 * Check: rbacPrivilege
 *
 * A role that grants everything, or the power to grant oneself more, is cluster-admin waiting for
 * a binding: it is judged when it is written, not only when it is bound.
 *
 * Objects: Role and ClusterRole (rbac.authorization.k8s.io).
 * Fields read: metadata.name, metadata.labels (the aggregate-to-admin|edit|view labels),
 * rules[*].{verbs,apiGroups,resources} (resourceNames do not narrow the judgement).
 * Denied, per rule, as the RBAC authorizer matches it (exact values, `*`, or `*` before a subresource):
 * - `*` verbs on `*` resources in every API group (cluster-admin in effect), or in the core group;
 * - `escalate` or `bind` on roles or clusterroles;
 * - `impersonate` on users, groups or serviceaccounts;
 * - in a ClusterRole (bindable cluster-wide): `create` on pods/exec, nodes/proxy or
 *   serviceaccounts/token, `patch`/`update` on pods/ephemeralcontainers (kubectl debug), `approve`
 *   on signers or `update`/`patch` on certificatesigningrequests/approval (a certificate for any
 *   identity), and any write to admission configurations (webhook configurations, admission
 *   policies and their bindings: admission is never called for them) unless the rule names them;
 * - in a ClusterRole labelled rbac.authorization.k8s.io/aggregate-to-view: reading secrets (view is
 *   the role that does not); the message of every finding names the bootstrap role an
 *   aggregate-to-* label adds it to.
 * Allowed: roles matching an `allowedRoles` entry; Kubernetes' bootstrap ClusterRoles holding what
 * the bootstrap policy gives them (src/core/bootstrap.ts) — a grant beyond it is judged as above.
 * Versions: v1.0.
 * Params: allowedRoles: [{kind: Role|ClusterRole, name, namespace?}] (globs; default none).
 */

import { BOOTSTRAP_CLUSTER_ROLES } from '../bootstrap.js';
import { defineCheck, type Finding } from '../check.js';
import { compileGlobs, type Matcher } from '../glob.js';
import { aggregatedInto, dangerousGrants } from '../grants.js';
import { ROLE_TARGET, type RoleView } from '../rbac.js';

interface AllowedRole {
  kind: 'Role' | 'ClusterRole';
  name: string;
  namespace?: string;
}

interface Params {
  allowedRoles: AllowedRole[];
}

export const rbacPrivilege = defineCheck<Params, RoleView>({
  id: 'rbacPrivilege',
  target: ROLE_TARGET,
  summary:
    'Roles must not grant * on *, escalate, bind, impersonate, or cluster-wide exec, debug, node proxy, tokens, CSR approval or admission writes.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      allowedRoles: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'name'],
          properties: {
            kind: { enum: ['Role', 'ClusterRole'] },
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
        const allowed = params.allowedRoles.map(
          (entry): { kind: string; name: Matcher; namespace: Matcher | undefined } => ({
            kind: entry.kind,
            name: compileGlobs([entry.name]),
            namespace: entry.namespace === undefined ? undefined : compileGlobs([entry.namespace]),
          }),
        );
        const isAllowed = (role: RoleView): boolean =>
          allowed.some(
            (entry) =>
              entry.kind === role.kind &&
              entry.name(role.name) &&
              (entry.namespace === undefined || entry.namespace(role.namespace)),
          );
        return (role) => {
          if (isAllowed(role)) return [];
          const bootstrap = role.kind === 'ClusterRole' ? BOOTSTRAP_CLUSTER_ROLES.get(role.name) : undefined;
          const expected = new Set(
            (bootstrap ?? []).flatMap((rule) => dangerousGrants(rule, role)).map((g) => g.key),
          );
          const where = aggregationClause(role);
          const findings: Finding[] = [];
          for (const rule of role.rules) {
            const grants = dangerousGrants(rule, role).filter((g) => !expected.has(g.key));
            if (grants.length === 0) continue;
            findings.push({
              path: rule.path,
              message: `${describeRole(role)} grants ${grants.map((g) => g.text).join(', ')}${where}`,
            });
          }
          return findings;
        };
      },
    },
  ],
});

function describeRole(role: RoleView): string {
  return role.kind === 'Role'
    ? `Role "${role.name}" in namespace "${role.namespace}"`
    : `ClusterRole "${role.name}"`;
}

/** `, which its label … adds to ClusterRole "edit"`, or '' for a role no label aggregates. */
function aggregationClause(role: RoleView): string {
  const targets = aggregatedInto(role);
  if (targets.length === 0) return '';
  const roles = targets.map((t) => `"${t}"`).join(', ');
  return targets.length === 1
    ? `, which its label rbac.authorization.k8s.io/aggregate-to-${targets[0] ?? ''} adds to ClusterRole ${roles}`
    : `, which its aggregate-to-* labels add to ClusterRoles ${roles}`;
}
