import t from 'tap';
import { evaluate, formatFieldPath, readRole, RoleIndex } from '../../../src/core/index.js';
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

// --- by what the role grants --------------------------------------------------------------------

const GRANTS = {
  allowedSubjects: [{ kind: 'Group', name: 'system:masters' }],
  denyClusterAdminInEffect: true,
  denyClusterWideSecretsAndPods: true,
  denyEverybody: true,
};

const clusterRoleObject = (
  name: string,
  rules: { verbs: string[]; apiGroups: string[]; resources: string[] }[],
  more: Record<string, unknown> = {},
) => ({ apiVersion: `${RBAC}/v1`, kind: 'ClusterRole', metadata: { name }, rules, ...more });

/** The ClusterRoles "in the cluster" for these rows, as serve's watch or check's input would hold them. */
function clusterRoles(): RoleIndex {
  const index = new RoleIndex();
  for (const object of [
    clusterRoleObject('god', [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }]),
    clusterRoleObject('core-god', [{ verbs: ['*'], apiGroups: [''], resources: ['*'] }]),
    clusterRoleObject('pod-reader', [
      { verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'] },
    ]),
    clusterRoleObject('secret-lister', [{ verbs: ['list'], apiGroups: [''], resources: ['secrets'] }]),
    clusterRoleObject('pod-maker', [{ verbs: ['create'], apiGroups: ['*'], resources: ['pods'] }]),
    clusterRoleObject('system:controller:job-controller', [
      { verbs: ['get', 'list', 'watch', 'create', 'delete'], apiGroups: [''], resources: ['pods'] },
    ]),
    // Aggregated: no rules of its own yet (no controller-manager has written them), but it selects god.
    clusterRoleObject('umbrella', [], {
      aggregationRule: { clusterRoleSelectors: [{ matchLabels: { 'example.com/umbrella': 'true' } }] },
    }),
    {
      ...clusterRoleObject('everything', [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }]),
      metadata: { name: 'everything', labels: { 'example.com/umbrella': 'true' } },
    },
  ]) {
    index.set(readRole(object, 'ClusterRole', ''));
  }
  return index;
}

const crb = (role: string, to: string, what: string) =>
  `ClusterRoleBinding "b": roleRef ClusterRole "${role}" grants ${what} to ${to} [r]`;
const SECRETS_AND_PODS = 'get on secrets and create on pods in every namespace';

interface GrantCase extends Case {
  bindingName?: string;
}

const byGrants: GrantCase[] = [
  {
    name: 'a full-wildcard ClusterRole not called cluster-admin',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('god'),
    subjects: [user('mallory')],
    messages: [crb('god', 'User "mallory"', '* on * (cluster-admin in effect)')],
    fields: ['subjects[0]'],
  },
  {
    name: 'a full-wildcard ClusterRole through a RoleBinding',
    kind: 'RoleBinding',
    roleRef: clusterRole('god'),
    subjects: [sa('ci')],
    messages: [
      'RoleBinding "b" in namespace "team": roleRef ClusterRole "god" grants * on * (cluster-admin in effect) to ServiceAccount "ci" in namespace "team" [r]',
    ],
  },
  {
    name: 'an aggregated ClusterRole that selects a full-wildcard one',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('umbrella'),
    subjects: [user('mallory')],
    messages: [crb('umbrella', 'User "mallory"', '* on * (cluster-admin in effect)')],
  },
  {
    name: 'ClusterRoleBinding of the bootstrap admin (known without seeing it)',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('admin'),
    subjects: [user('bob')],
    messages: [crb('admin', 'User "bob"', SECRETS_AND_PODS)],
  },
  {
    name: 'ClusterRoleBinding of the bootstrap edit',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('edit'),
    subjects: [group('devs')],
    messages: [crb('edit', 'Group "devs"', SECRETS_AND_PODS)],
  },
  {
    name: 'a role that only lists secrets, cluster-wide',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('secret-lister'),
    subjects: [user('bob')],
    messages: [crb('secret-lister', 'User "bob"', 'list on secrets in every namespace')],
  },
  {
    name: 'a role that creates pods, cluster-wide',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('pod-maker'),
    subjects: [user('bob')],
    messages: [crb('pod-maker', 'User "bob"', 'create on pods in every namespace')],
  },
  {
    name: '* on * in the core group reads secrets and creates pods',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('core-god'),
    subjects: [user('bob')],
    messages: [crb('core-god', 'User "bob"', SECRETS_AND_PODS)],
  },
  {
    name: 'a RoleBinding of admin inside one namespace for a team (normal)',
    kind: 'RoleBinding',
    roleRef: clusterRole('admin'),
    subjects: [group('team-a'), user('alice')],
    messages: [],
  },
  {
    name: 'a ClusterRoleBinding of view to a user (normal)',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('view'),
    subjects: [user('alice')],
    messages: [],
  },
  {
    name: 'a ClusterRoleBinding of a pod reader (normal)',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('pod-reader'),
    subjects: [user('alice')],
    messages: [],
  },
  {
    name: 'an allowed subject is allowed whatever the role grants',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('god'),
    subjects: [group('system:masters'), user('mallory')],
    messages: [crb('god', 'User "mallory"', '* on * (cluster-admin in effect)')],
    fields: ['subjects[1]'],
  },
  {
    name: 'view to every authenticated user',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('view'),
    subjects: [group('system:authenticated')],
    messages: [
      'ClusterRoleBinding "b": roleRef ClusterRole "view" is granted to Group "system:authenticated", which is every authenticated user [r]',
    ],
  },
  {
    name: 'a namespaced Role to every service account, anonymous and unauthenticated',
    kind: 'RoleBinding',
    roleRef: role('reader'),
    subjects: [group('system:serviceaccounts'), user('system:anonymous'), group('system:unauthenticated')],
    messages: [
      'RoleBinding "b" in namespace "team": roleRef Role "reader" is granted to Group "system:serviceaccounts", which is every service account [r]',
      'RoleBinding "b" in namespace "team": roleRef Role "reader" is granted to User "system:anonymous", which is every anonymous request [r]',
      'RoleBinding "b" in namespace "team": roleRef Role "reader" is granted to Group "system:unauthenticated", which is every anonymous request [r]',
    ],
  },
  {
    name: "one namespace's service accounts, and a user called like the group (distractors)",
    kind: 'RoleBinding',
    roleRef: role('reader'),
    subjects: [group('system:serviceaccounts:team'), user('system:authenticated')],
    messages: [],
  },
  {
    name: 'everybody and a role that grants everything: what it grants is said',
    kind: 'ClusterRoleBinding',
    roleRef: clusterRole('god'),
    subjects: [group('system:authenticated')],
    messages: [crb('god', 'Group "system:authenticated"', '* on * (cluster-admin in effect)')],
  },
  {
    name: 'the bootstrap discovery bindings (as the API server writes them)',
    kind: 'ClusterRoleBinding',
    bindingName: 'system:public-info-viewer',
    roleRef: clusterRole('system:public-info-viewer'),
    subjects: [group('system:authenticated'), group('system:unauthenticated')],
    messages: [],
  },
  {
    name: "a controller's bootstrap binding (its role creates pods in every namespace)",
    kind: 'ClusterRoleBinding',
    bindingName: 'system:controller:replicaset-controller',
    roleRef: clusterRole('system:controller:replicaset-controller'),
    subjects: [sa('replicaset-controller', 'kube-system')],
    messages: [],
  },
  {
    name: 'the kube-controller-manager bootstrap binding (reads secrets)',
    kind: 'ClusterRoleBinding',
    bindingName: 'system:kube-controller-manager',
    roleRef: clusterRole('system:kube-controller-manager'),
    subjects: [user('system:kube-controller-manager')],
    messages: [],
  },
  {
    name: 'a bootstrap binding name pointed at another role (distractor)',
    kind: 'ClusterRoleBinding',
    bindingName: 'system:discovery',
    roleRef: clusterRole('god'),
    subjects: [group('system:authenticated')],
    messages: [
      'ClusterRoleBinding "system:discovery": roleRef ClusterRole "god" grants * on * (cluster-admin in effect) to Group "system:authenticated" [r]',
    ],
  },
  {
    name: "a controller's binding name with another service account (distractor)",
    kind: 'ClusterRoleBinding',
    bindingName: 'system:controller:job-controller',
    roleRef: clusterRole('system:controller:job-controller'),
    subjects: [sa('job-controller', 'kube-system'), sa('default', 'kube-system')],
    messages: [
      'ClusterRoleBinding "system:controller:job-controller": roleRef ClusterRole "system:controller:job-controller" grants create on pods in every namespace to ServiceAccount "default" in namespace "kube-system" [r]',
    ],
    fields: ['subjects[1]'],
  },
  {
    name: 'a namespaced Role called god is never looked up (distractor)',
    kind: 'RoleBinding',
    roleRef: role('god'),
    subjects: [user('mallory')],
    messages: [],
  },
];

t.test('by what the role grants', async (t) => {
  const ruleset = oneRule('clusterAdminBinding', GRANTS);
  const roles = clusterRoles();
  for (const c of byGrants) {
    t.test(c.name, async (t) => {
      const object = binding(c.kind, c.roleRef, c.subjects);
      if (c.bindingName !== undefined) object.metadata.name = c.bindingName;
      const request = requestFor(c.kind, object, {
        ...(c.kind === 'RoleBinding' ? { namespace: 'team' } : {}),
      });
      expectDecision(t, evaluate(request, ruleset, { roles }), c);
    });
  }
});

t.test('a role Portcullis cannot see is reported as a warning, not guessed', async (t) => {
  const ruleset = oneRule('clusterAdminBinding', GRANTS);
  const object = binding('ClusterRoleBinding', clusterRole('mystery'), [user('bob')]);
  const decision = evaluate(requestFor('ClusterRoleBinding', object), ruleset, { roles: clusterRoles() });
  t.equal(decision.allowed, true, 'a deny rule does not refuse what it could not judge');
  t.same(
    decision.violations.map((v) => [v.action, formatFieldPath(v.path), v.message]),
    [
      [
        'warn',
        'roleRef',
        'ClusterRoleBinding "b": roleRef ClusterRole "mystery" is not known to Portcullis (not in the cluster, the input or the bootstrap policy), so what it grants was not judged',
      ],
    ],
  );
  const audit = oneRule('clusterAdminBinding', GRANTS, { action: 'audit' });
  t.same(
    evaluate(requestFor('ClusterRoleBinding', object), audit).violations.map((v) => v.action),
    ['audit'],
    'an audit rule records it as audit',
  );
  const toEverybody = binding('ClusterRoleBinding', clusterRole('mystery'), [group('system:authenticated')]);
  t.same(
    evaluate(requestFor('ClusterRoleBinding', toEverybody), ruleset).violations.map((v) => v.action),
    ['warn', 'deny'],
    'everybody is denied without knowing the role',
  );
  const allowedOnly = binding('ClusterRoleBinding', clusterRole('mystery'), [group('system:masters')]);
  t.same(evaluate(requestFor('ClusterRoleBinding', allowedOnly), ruleset).violations, [], 'nothing to say');
});

t.test(
  'without the deny* params, bindings are judged by role name only (v1.0 RuleSets keep their meaning)',
  async (t) => {
    const ruleset = oneRule('clusterAdminBinding');
    for (const [roleRef, subject] of [
      [clusterRole('god'), user('mallory')],
      [clusterRole('admin'), user('bob')],
      [clusterRole('view'), group('system:authenticated')],
      [clusterRole('mystery'), user('bob')],
    ] as const) {
      const decision = evaluate(
        requestFor('ClusterRoleBinding', binding('ClusterRoleBinding', roleRef, [subject])),
        ruleset,
        { roles: clusterRoles() },
      );
      t.same(decision.violations, [], roleRef.name);
    }
  },
);
