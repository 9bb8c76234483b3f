import t from 'tap';
import { evaluate } from '../../../src/core/index.js';
import { requestFor } from '../../helpers/requests.js';
import { expectDecision } from '../../helpers/decisions.js';
import { oneRule } from '../../helpers/rules.js';

type BindingKind = 'ClusterRoleBinding' | 'RoleBinding';
const RBAC = 'rbac.authorization.k8s.io';

const user = (name: string) => ({ apiGroup: RBAC, kind: 'User', name });
const group = (name: string) => ({ apiGroup: RBAC, kind: 'Group', name });
const sa = (name: string, namespace?: string) => ({
  kind: 'ServiceAccount',
  name,
  ...(namespace === undefined ? {} : { namespace }),
});

function binding(kind: BindingKind, roleRef: { kind: string; name: string }, subjects?: unknown[]) {
  return {
    apiVersion: `${RBAC}/v1`,
    kind,
    metadata: { name: 'b', ...(kind === 'RoleBinding' ? { namespace: 'team' } : {}) },
    roleRef: { apiGroup: RBAC, ...roleRef },
    ...(subjects === undefined ? {} : { subjects }),
  };
}
const clusterRole = (name: string) => ({ kind: 'ClusterRole', name });
const role = (name: string) => ({ kind: 'Role', name });

interface Case {
  name: string;
  kind: BindingKind;
  roleRef: { kind: string; name: string };
  subjects?: unknown[];
  messages: string[];
  fields?: string[];
}

const grants = (kind: BindingKind, role: string, to: string) =>
  `${kind} must not grant ClusterRole "${role}" to ${to} [r]`;

const defaults: Case[] = [
  {
    name: 'ClusterRoleBinding to cluster-admin',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [user('mallory')],
    messages: [grants('ClusterRoleBinding', 'cluster-admin', 'User "mallory"')],
    fields: ['subjects[0]'],
  },
  {
    name: 'RoleBinding to the ClusterRole cluster-admin',
    kind: 'RoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [sa('ci', 'team')],
    messages: [grants('RoleBinding', 'cluster-admin', 'ServiceAccount "ci" in namespace "team"')],
    fields: ['subjects[0]'],
  },
  {
    name: 'a namespaced Role that is called cluster-admin (distractor)',
    kind: 'RoleBinding',
    roleRef: role('cluster-admin'),
    subjects: [user('mallory')],
    messages: [],
  },
  {
    name: 'another ClusterRole',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('admin'),
    subjects: [user('x')],
    messages: [],
  },
  {
    name: 'a ClusterRole whose name only starts with cluster-admin (distractor)',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin-readonly'),
    subjects: [user('x')],
    messages: [],
  },
  { name: 'no subjects', kind: 'ClusterRoleBinding', roleRef: clusterRole('cluster-admin'), messages: [] },
  {
    name: 'an empty subjects list',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [],
    messages: [],
  },
  {
    name: 'every subject is named, with its index',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [user('a'), group('devs'), sa('default', 'kube-system')],
    messages: [
      grants('ClusterRoleBinding', 'cluster-admin', 'User "a"'),
      grants('ClusterRoleBinding', 'cluster-admin', 'Group "devs"'),
      grants('ClusterRoleBinding', 'cluster-admin', 'ServiceAccount "default" in namespace "kube-system"'),
    ],
    fields: ['subjects[0]', 'subjects[1]', 'subjects[2]'],
  },
];

const ALLOWED = [
  { kind: 'Group', name: 'system:masters' },
  { kind: 'ServiceAccount', name: 'argocd-server', namespace: 'argocd' },
  { kind: 'ServiceAccount', name: 'deployer' },
  { kind: 'User', name: 'breakglass' },
];

const allowedSubjects: Case[] = [
  {
    name: 'an allowed Group',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [group('system:masters')],
    messages: [],
  },
  {
    name: 'the same name with another kind (distractor)',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [user('system:masters')],
    messages: [grants('ClusterRoleBinding', 'cluster-admin', 'User "system:masters"')],
  },
  {
    name: 'a name that only contains an allowed name (distractor)',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [user('breakglass2')],
    messages: [grants('ClusterRoleBinding', 'cluster-admin', 'User "breakglass2"')],
  },
  {
    name: 'an allowed ServiceAccount in its namespace',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [sa('argocd-server', 'argocd')],
    messages: [],
  },
  {
    name: 'an allowed ServiceAccount name in another namespace',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [sa('argocd-server', 'team')],
    messages: [
      grants('ClusterRoleBinding', 'cluster-admin', 'ServiceAccount "argocd-server" in namespace "team"'),
    ],
  },
  {
    name: 'an entry without a namespace allows the ServiceAccount in any namespace',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [sa('deployer', 'a'), sa('deployer', 'b')],
    messages: [],
  },
  {
    name: 'a RoleBinding ServiceAccount without a namespace is the one in the binding namespace',
    kind: 'RoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [sa('argocd-server')],
    // The RoleBinding lives in "team": its subject is team/argocd-server, not argocd/argocd-server.
    messages: [grants('RoleBinding', 'cluster-admin', 'ServiceAccount "argocd-server" in namespace "team"')],
  },
  {
    name: 'one allowed subject and one not: only the other is named',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [group('system:masters'), user('mallory'), user('breakglass')],
    messages: [grants('ClusterRoleBinding', 'cluster-admin', 'User "mallory"')],
    fields: ['subjects[1]'],
  },
];

const customRoles: Case[] = [
  {
    name: 'a listed role',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('admin'),
    subjects: [user('x')],
    messages: [grants('ClusterRoleBinding', 'admin', 'User "x"')],
  },
  {
    name: 'a listed role through a RoleBinding',
    kind: 'RoleBinding',
    roleRef: clusterRole('admin'),
    subjects: [user('x')],
    messages: [grants('RoleBinding', 'admin', 'User "x"')],
  },
  {
    name: 'a Role with a listed name (distractor)',
    kind: 'RoleBinding',
    roleRef: role('admin'),
    subjects: [user('x')],
    messages: [],
  },
  {
    name: 'a role not listed',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('edit'),
    subjects: [user('x')],
    messages: [],
  },
  {
    name: 'roles replaces the default list',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('cluster-admin'),
    subjects: [user('x')],
    messages: [],
  },
];

for (const [title, params, cases] of [
  ['default params', {}, defaults],
  ['allowedSubjects', { allowedSubjects: ALLOWED }, allowedSubjects],
  ['custom roles', { roles: ['admin', 'system:aggregate-to-admin'] }, customRoles],
] as const) {
  t.test(title, async (t) => {
    const ruleset = oneRule('clusterAdminBinding', params);
    for (const c of cases) {
      t.test(c.name, async (t) => {
        const request = requestFor(c.kind, binding(c.kind, c.roleRef, c.subjects), {
          ...(c.kind === 'RoleBinding' ? { namespace: 'team' } : {}),
        });
        const decision = evaluate(request, ruleset);
        expectDecision(t, decision, c);
      });
    }
  });
}

t.test(
  'a RoleBinding ServiceAccount without a namespace matches an entry for the binding namespace',
  async (t) => {
    const ruleset = oneRule('clusterAdminBinding', { allowedSubjects: ALLOWED });
    const object = {
      ...binding('RoleBinding', clusterRole('cluster-admin'), [sa('argocd-server')]),
      metadata: { name: 'b', namespace: 'argocd' },
    };
    const decision = evaluate(requestFor('RoleBinding', object, { namespace: 'argocd' }), ruleset);
    t.same(decision.violations, []);
    t.equal(decision.allowed, true);
  },
);

t.test('a malformed binding fails closed', async (t) => {
  const ruleset = oneRule('clusterAdminBinding');
  const rows: { name: string; object: unknown; malformed: { path: (string | number)[]; message: string } }[] =
    [
      {
        name: 'no roleRef',
        object: { apiVersion: `${RBAC}/v1`, kind: 'ClusterRoleBinding', subjects: [user('x')] },
        malformed: { path: ['roleRef'], message: 'is missing (must be an object)' },
      },
      {
        name: 'subjects not a list',
        object: { ...binding('ClusterRoleBinding', clusterRole('cluster-admin')), subjects: user('x') },
        malformed: { path: ['subjects'], message: 'must be a list, not an object' },
      },
      {
        name: 'a subject name that is not a string',
        object: binding('ClusterRoleBinding', clusterRole('cluster-admin'), [{ kind: 'User', name: 7 }]),
        malformed: { path: ['subjects', 0, 'name'], message: 'must be a string, not a number' },
      },
    ];
  for (const row of rows) {
    const decision = evaluate(requestFor('ClusterRoleBinding', row.object), ruleset);
    t.equal(decision.allowed, false, row.name);
    t.same(decision.malformed, row.malformed, row.name);
  }
});
