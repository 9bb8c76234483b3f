import t from 'tap';
import { evaluate } from '../../../src/core/index.js';
import { requestFor } from '../../helpers/requests.js';
import { expectDecision } from '../../helpers/decisions.js';
import { oneRule } from '../../helpers/rules.js';

const RBAC = 'rbac.authorization.k8s.io';

interface Rule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
}
const rule = (verbs: string[], apiGroups: string[], resources: string[], more: Partial<Rule> = {}): Rule => ({
  verbs,
  apiGroups,
  resources,
  ...more,
});

type RoleKind = 'ClusterRole' | 'Role';

function role(kind: RoleKind, name: string, rules: Rule[], labels?: Record<string, string>) {
  return {
    apiVersion: `${RBAC}/v1`,
    kind,
    metadata: {
      name,
      ...(kind === 'Role' ? { namespace: 'team' } : {}),
      ...(labels === undefined ? {} : { labels }),
    },
    rules,
  };
}

interface Case {
  name: string;
  kind?: RoleKind;
  role: string;
  rules: Rule[];
  labels?: Record<string, string>;
  messages: string[];
  fields?: string[];
}

const AGGREGATE_TO = (target: string) => ({ [`${RBAC}/aggregate-to-${target}`]: 'true' });
const cr = (name: string, grants: string, where = '') => `ClusterRole "${name}" grants ${grants}${where} [r]`;

const patterns: Case[] = [
  {
    name: 'the full wildcard (kubectl create clusterrole god --verb=* --resource=*.*)',
    role: 'god',
    rules: [rule(['*'], ['*'], ['*'])],
    messages: [cr('god', '* on * (cluster-admin in effect)')],
    fields: ['rules[0]'],
  },
  {
    name: 'the full wildcard in a Role is everything in its namespace',
    kind: 'Role',
    role: 'ns-god',
    rules: [rule(['get'], [''], ['pods']), rule(['*'], ['*'], ['*'])],
    messages: ['Role "ns-god" in namespace "team" grants * on * (everything in its namespace) [r]'],
    fields: ['rules[1]'],
  },
  {
    name: '* on * in the core group (kubectl create clusterrole god --verb=* --resource=*), named alone',
    role: 'core-god',
    rules: [rule(['*'], [''], ['*'])],
    messages: [cr('core-god', '* on * in the core API group')],
  },
  {
    name: '* on * in one other group (distractor)',
    role: 'apps-admin',
    rules: [rule(['*'], ['apps'], ['*'])],
    messages: [],
  },
  {
    name: '* verbs on named resources, * resources with named verbs (distractors)',
    role: 'wide',
    rules: [rule(['*'], ['*'], ['configmaps', 'deployments']), rule(['get', 'list', 'watch'], ['*'], ['*'])],
    messages: [],
  },
  {
    name: 'escalate and bind',
    role: 'granter',
    rules: [rule(['escalate'], [RBAC], ['clusterroles']), rule(['bind'], [RBAC], ['roles'])],
    messages: [cr('granter', 'escalate on clusterroles'), cr('granter', 'bind on roles')],
    fields: ['rules[0]', 'rules[1]'],
  },
  {
    name: '* verbs on roles is escalate and bind',
    kind: 'Role',
    role: 'rbac-manager',
    rules: [rule(['*'], [RBAC], ['roles', 'rolebindings'])],
    messages: ['Role "rbac-manager" in namespace "team" grants escalate on roles, bind on roles [r]'],
  },
  {
    name: 'bind through resourceNames is still bind (resourceNames do not narrow)',
    role: 'bind-one',
    rules: [rule(['bind'], [RBAC], ['clusterroles'], { resourceNames: ['cluster-admin'] })],
    messages: [cr('bind-one', 'bind on clusterroles')],
  },
  {
    name: 'writing roles and bindings without escalate or bind (distractor: admin does this)',
    role: 'role-writer',
    rules: [rule(['get', 'list', 'create', 'update', 'patch', 'delete'], [RBAC], ['roles', 'rolebindings'])],
    messages: [],
  },
  {
    name: 'escalate on something that is not a role (distractor)',
    role: 'odd',
    rules: [rule(['escalate', 'bind'], [''], ['configmaps'])],
    messages: [],
  },
  {
    name: 'impersonate users, groups and service accounts',
    role: 'impersonator',
    rules: [
      rule(['impersonate'], [''], ['users', 'groups']),
      rule(['impersonate'], [''], ['serviceaccounts']),
    ],
    messages: [
      cr('impersonator', 'impersonate on users, impersonate on groups'),
      cr('impersonator', 'impersonate on serviceaccounts'),
    ],
  },
  {
    name: 'impersonate in a Role',
    kind: 'Role',
    role: 'sa-impersonator',
    rules: [rule(['impersonate'], [''], ['serviceaccounts'])],
    messages: ['Role "sa-impersonator" in namespace "team" grants impersonate on serviceaccounts [r]'],
  },
  {
    name: 'impersonate in another API group (distractor)',
    role: 'other-impersonate',
    rules: [rule(['impersonate'], ['authentication.k8s.io'], ['userextras/scopes'])],
    messages: [],
  },
  {
    name: 'create on pods/exec and nodes/proxy in a ClusterRole',
    role: 'debugger',
    rules: [rule(['create'], [''], ['pods/exec']), rule(['create', 'get'], [''], ['nodes/proxy'])],
    messages: [cr('debugger', 'create on pods/exec'), cr('debugger', 'create on nodes/proxy')],
  },
  {
    name: '*/exec is the exec subresource of any resource',
    role: 'any-exec',
    rules: [rule(['create'], [''], ['*/exec'])],
    messages: [cr('any-exec', 'create on pods/exec')],
  },
  {
    name: 'create on pods/exec in a Role stays in its namespace (distractor)',
    kind: 'Role',
    role: 'team-debugger',
    rules: [rule(['create'], [''], ['pods/exec'])],
    messages: [],
  },
  {
    name: 'get on pods/exec and nodes/proxy (distractor: the create is what runs commands)',
    role: 'reader',
    rules: [rule(['get'], [''], ['pods/exec', 'nodes/proxy', 'pods/log'])],
    messages: [],
  },
  {
    name: 'kubectl debug into any pod: patch or update on pods/ephemeralcontainers in a ClusterRole',
    role: 'debug-anything',
    rules: [
      rule(['patch'], [''], ['pods/ephemeralcontainers']),
      rule(['update'], [''], ['*/ephemeralcontainers']),
    ],
    messages: [
      cr('debug-anything', 'patch on pods/ephemeralcontainers'),
      cr('debug-anything', 'update on pods/ephemeralcontainers'),
    ],
  },
  {
    name: 'a token for any service account (kube-system controllers included)',
    role: 'token-minter',
    rules: [rule(['create'], [''], ['serviceaccounts/token'])],
    messages: [cr('token-minter', 'create on serviceaccounts/token')],
  },
  {
    name: 'approving CSRs: approve on signers (resourceNames do not narrow), update and patch on the approval',
    role: 'csr-approver',
    rules: [
      rule(['approve'], ['certificates.k8s.io'], ['signers'], {
        resourceNames: ['kubernetes.io/kube-apiserver-client'],
      }),
      rule(['update', 'patch'], ['certificates.k8s.io'], ['certificatesigningrequests/approval']),
    ],
    messages: [
      cr('csr-approver', 'approve on signers'),
      cr(
        'csr-approver',
        'update on certificatesigningrequests/approval, patch on certificatesigningrequests/approval',
      ),
    ],
  },
  {
    name: 'CSR, token and debug grants that do not reach the door (distractors)',
    role: 'near-misses',
    rules: [
      rule(['create', 'get', 'list'], ['certificates.k8s.io'], ['certificatesigningrequests']),
      rule(['approve'], ['example.com'], ['signers']),
      rule(['get', 'list'], [''], ['serviceaccounts', 'pods/ephemeralcontainers']),
      rule(['create'], [''], ['serviceaccounts']),
      rule(['update'], ['certificates.k8s.io'], ['certificatesigningrequests/status']),
    ],
    messages: [],
  },
  {
    name: 'the same grants in a Role stay in its namespace, or reach nothing (cluster-scoped) (distractor)',
    kind: 'Role',
    role: 'team-tokens',
    rules: [
      rule(['create'], [''], ['serviceaccounts/token']),
      rule(['patch'], [''], ['pods/ephemeralcontainers']),
      rule(['approve'], ['certificates.k8s.io'], ['signers']),
      rule(['delete'], ['admissionregistration.k8s.io'], ['validatingwebhookconfigurations']),
    ],
    messages: [],
  },
  {
    name: 'writing or deleting admission configurations switches admission off',
    role: 'webhook-admin',
    rules: [
      rule(['delete'], ['admissionregistration.k8s.io'], ['validatingwebhookconfigurations']),
      rule(
        ['update', 'patch'],
        ['admissionregistration.k8s.io'],
        ['mutatingwebhookconfigurations', 'validatingadmissionpolicybindings'],
      ),
      rule(['*'], ['admissionregistration.k8s.io'], ['*']),
    ],
    messages: [
      cr('webhook-admin', 'delete on validatingwebhookconfigurations (admission can be switched off)'),
      cr(
        'webhook-admin',
        'update, patch on mutatingwebhookconfigurations, validatingadmissionpolicybindings (admission can be switched off)',
      ),
      cr(
        'webhook-admin',
        'create, update, patch, delete, deletecollection on validatingwebhookconfigurations, mutatingwebhookconfigurations, validatingadmissionpolicies, validatingadmissionpolicybindings, mutatingadmissionpolicies, mutatingadmissionpolicybindings (admission can be switched off)',
      ),
    ],
  },
  {
    name: 'updating the webhook configurations it names (a product keeping its own caBundle current), reading any (distractors)',
    role: 'cainjector',
    rules: [
      rule(
        ['get', 'update', 'patch'],
        ['admissionregistration.k8s.io'],
        ['validatingwebhookconfigurations'],
        {
          resourceNames: ['portcullis', 'custom.portcullis.io'],
        },
      ),
      rule(['get', 'list', 'watch'], ['admissionregistration.k8s.io'], ['*']),
    ],
    messages: [],
  },
  {
    name: 'a role that reads pods',
    role: 'pod-reader',
    rules: [rule(['get', 'list', 'watch'], [''], ['pods', 'pods/log'])],
    messages: [],
  },
  { name: 'no rules at all', role: 'empty', rules: [], messages: [] },
];

const aggregation: Case[] = [
  {
    name: 'aggregate-to-admin with the full wildcard',
    role: 'sneaky',
    labels: AGGREGATE_TO('admin'),
    rules: [rule(['*'], ['*'], ['*'])],
    messages: [
      cr(
        'sneaky',
        '* on * (cluster-admin in effect)',
        `, which its label ${RBAC}/aggregate-to-admin adds to ClusterRole "admin"`,
      ),
    ],
  },
  {
    name: 'aggregate-to-edit with impersonate on users',
    role: 'sneaky-edit',
    labels: AGGREGATE_TO('edit'),
    rules: [rule(['get'], [''], ['pods']), rule(['impersonate'], [''], ['users'])],
    messages: [
      cr(
        'sneaky-edit',
        'impersonate on users',
        `, which its label ${RBAC}/aggregate-to-edit adds to ClusterRole "edit"`,
      ),
    ],
    fields: ['rules[1]'],
  },
  {
    name: 'aggregate-to-view with secrets: view is the role that does not read them',
    role: 'sneaky-view',
    labels: AGGREGATE_TO('view'),
    rules: [rule(['list'], [''], ['secrets'])],
    messages: [
      cr(
        'sneaky-view',
        'list on secrets',
        `, which its label ${RBAC}/aggregate-to-view adds to ClusterRole "view"`,
      ),
    ],
  },
  {
    name: 'two aggregation labels are both named',
    role: 'both',
    labels: { ...AGGREGATE_TO('admin'), ...AGGREGATE_TO('view') },
    rules: [rule(['get'], [''], ['secrets'])],
    messages: [
      cr('both', 'get on secrets', ', which its aggregate-to-* labels add to ClusterRoles "admin", "view"'),
    ],
  },
  {
    name: 'aggregate-to-edit with secrets (distractor: edit reads secrets already)',
    role: 'crd-edit',
    labels: AGGREGATE_TO('edit'),
    rules: [rule(['get', 'list', 'watch'], [''], ['secrets']), rule(['*'], ['example.com'], ['widgets'])],
    messages: [],
  },
  {
    name: 'an aggregation label that is not "true" (distractor)',
    role: 'not-aggregated',
    labels: { [`${RBAC}/aggregate-to-view`]: 'false' },
    rules: [rule(['get'], [''], ['secrets'])],
    messages: [],
  },
  {
    name: 'a CRD role for view (what operators ship)',
    role: 'widgets-view',
    labels: AGGREGATE_TO('view'),
    rules: [rule(['get', 'list', 'watch'], ['example.com'], ['widgets'])],
    messages: [],
  },
];

const bootstrap: Case[] = [
  {
    name: 'the bootstrap cluster-admin',
    role: 'cluster-admin',
    rules: [rule(['*'], ['*'], ['*'])],
    messages: [],
  },
  {
    name: 'system:aggregate-to-edit as the API server writes it (impersonate serviceaccounts, create pods/exec)',
    role: 'system:aggregate-to-edit',
    labels: AGGREGATE_TO('edit'),
    rules: [
      rule(['get', 'list', 'watch'], [''], ['pods/attach', 'pods/exec', 'secrets']),
      rule(['impersonate'], [''], ['serviceaccounts']),
      rule(['create', 'update', 'patch', 'delete', 'deletecollection'], [''], ['pods', 'pods/exec']),
    ],
    messages: [],
  },
  {
    name: 'system:aggregate-to-edit with one grant more than bootstrap gives it',
    role: 'system:aggregate-to-edit',
    labels: AGGREGATE_TO('edit'),
    rules: [rule(['impersonate'], [''], ['serviceaccounts', 'users'])],
    messages: [
      cr(
        'system:aggregate-to-edit',
        'impersonate on users',
        `, which its label ${RBAC}/aggregate-to-edit adds to ClusterRole "edit"`,
      ),
    ],
  },
  {
    name: 'edit as the controller-manager aggregates it',
    role: 'edit',
    labels: AGGREGATE_TO('admin'),
    rules: [
      rule(['impersonate'], [''], ['serviceaccounts']),
      rule(['create', 'delete'], [''], ['pods', 'pods/exec', 'pods/attach']),
      rule(['get'], [''], ['secrets']),
    ],
    messages: [],
  },
  {
    name: 'admin with the full wildcard added',
    role: 'admin',
    rules: [rule(['create'], [''], ['pods/exec']), rule(['*'], ['*'], ['*'])],
    messages: [cr('admin', '* on * (cluster-admin in effect)')],
    fields: ['rules[1]'],
  },
  {
    name: 'system:kubelet-api-admin as bootstrap gives it',
    role: 'system:kubelet-api-admin',
    rules: [rule(['get', 'list', 'watch'], [''], ['nodes']), rule(['*'], [''], ['nodes/proxy', 'nodes/log'])],
    messages: [],
  },
  {
    name: 'the aggregation controller (escalate on clusterroles)',
    role: 'system:controller:clusterrole-aggregation-controller',
    rules: [rule(['escalate', 'get', 'list', 'watch', 'update', 'patch'], [RBAC], ['clusterroles'])],
    messages: [],
  },
  {
    name: 'the garbage collector and the namespace controller (delete, patch, update on * in every group)',
    role: 'system:controller:generic-garbage-collector',
    rules: [rule(['delete', 'get', 'list', 'patch', 'update', 'watch'], ['*'], ['*'])],
    messages: [],
  },
  {
    name: 'the certificate controller approving CSRs, as bootstrap gives it',
    role: 'system:controller:certificate-controller',
    rules: [
      rule(
        ['update'],
        ['certificates.k8s.io'],
        ['certificatesigningrequests/approval', 'certificatesigningrequests/status'],
      ),
      rule(['approve'], ['certificates.k8s.io'], ['signers'], {
        resourceNames: ['kubernetes.io/kube-apiserver-client-kubelet'],
      }),
    ],
    messages: [],
  },
  {
    name: 'system:node with an admission write bootstrap does not give it',
    role: 'system:node',
    rules: [
      rule(['create'], [''], ['serviceaccounts/token']),
      rule(['delete'], ['admissionregistration.k8s.io'], ['mutatingwebhookconfigurations']),
    ],
    messages: [cr('system:node', 'delete on mutatingwebhookconfigurations (admission can be switched off)')],
    fields: ['rules[1]'],
  },
  {
    name: 'a system: name is not a bootstrap role',
    role: 'system:god',
    rules: [rule(['*'], ['*'], ['*'])],
    messages: [cr('system:god', '* on * (cluster-admin in effect)')],
  },
  {
    name: 'a Role named like a bootstrap ClusterRole is not one',
    kind: 'Role',
    role: 'cluster-admin',
    rules: [rule(['*'], ['*'], ['*'])],
    messages: ['Role "cluster-admin" in namespace "team" grants * on * (everything in its namespace) [r]'],
  },
];

const ALLOWED = [
  { kind: 'ClusterRole', name: 'ops:*' },
  { kind: 'Role', name: 'ci-deployer', namespace: 'ci-*' },
];

const allowed: Case[] = [
  {
    name: 'a ClusterRole matching a glob',
    role: 'ops:breakglass',
    rules: [rule(['*'], ['*'], ['*'])],
    messages: [],
  },
  {
    name: 'a Role with the ClusterRole entry name (distractor: the kind differs)',
    kind: 'Role',
    role: 'ops:breakglass',
    rules: [rule(['bind'], [RBAC], ['roles'])],
    messages: ['Role "ops:breakglass" in namespace "team" grants bind on roles [r]'],
  },
  {
    name: 'a Role allowed in other namespaces only (distractor)',
    kind: 'Role',
    role: 'ci-deployer',
    rules: [rule(['bind'], [RBAC], ['roles'])],
    messages: ['Role "ci-deployer" in namespace "team" grants bind on roles [r]'],
  },
  {
    name: 'a name that only starts like the glob (distractor)',
    role: 'ops',
    rules: [rule(['*'], ['*'], ['*'])],
    messages: [cr('ops', '* on * (cluster-admin in effect)')],
  },
];

for (const [title, params, cases] of [
  ['patterns', {}, patterns],
  ['aggregation labels', {}, aggregation],
  ['Kubernetes bootstrap roles', {}, bootstrap],
  ['allowedRoles', { allowedRoles: ALLOWED }, allowed],
] as const) {
  t.test(title, async (t) => {
    const ruleset = oneRule('rbacPrivilege', params);
    for (const c of cases) {
      t.test(c.name, async (t) => {
        const kind = c.kind ?? 'ClusterRole';
        const request = requestFor(kind, role(kind, c.role, c.rules, c.labels), {
          ...(kind === 'Role' ? { namespace: 'team' } : {}),
        });
        expectDecision(t, evaluate(request, ruleset), c);
      });
    }
  });
}

t.test('a Role in namespace ci-main matches the namespace glob', async (t) => {
  const object = { ...role('Role', 'ci-deployer', [rule(['bind'], [RBAC], ['roles'])]) };
  object.metadata = { name: 'ci-deployer', namespace: 'ci-main' };
  const decision = evaluate(
    requestFor('Role', object, { namespace: 'ci-main' }),
    oneRule('rbacPrivilege', { allowedRoles: ALLOWED }),
  );
  expectDecision(t, decision, { messages: [] });
});

t.test('updates', async (t) => {
  const ruleset = oneRule('rbacPrivilege');
  const god = role('ClusterRole', 'god', [rule(['*'], ['*'], ['*'])]);
  const annotated = { ...god, metadata: { name: 'god', annotations: { owner: 'ops' } } };
  const unchanged = evaluate(
    requestFor('ClusterRole', annotated, { operation: 'UPDATE', oldObject: god }),
    ruleset,
  );
  t.equal(
    unchanged.skipped?.kind,
    'unchanged',
    'an annotation on a role written before the rule is not re-judged',
  );

  const reader = role('ClusterRole', 'reader', [rule(['get'], [''], ['secrets'])]);
  const relabelled = role('ClusterRole', 'reader', [rule(['get'], [''], ['secrets'])], AGGREGATE_TO('view'));
  const decision = evaluate(
    requestFor('ClusterRole', relabelled, { operation: 'UPDATE', oldObject: reader }),
    ruleset,
  );
  expectDecision(t, decision, {
    messages: [
      cr(
        'reader',
        'get on secrets',
        `, which its label ${RBAC}/aggregate-to-view adds to ClusterRole "view"`,
      ),
    ],
  });
});

t.test('a malformed role fails closed', async (t) => {
  const ruleset = oneRule('rbacPrivilege');
  const rows: { name: string; object: unknown; malformed: { path: (string | number)[]; message: string } }[] =
    [
      {
        name: 'rules not a list',
        object: { ...role('ClusterRole', 'x', []), rules: { verbs: ['*'] } },
        malformed: { path: ['rules'], message: 'must be a list, not an object' },
      },
      {
        name: 'a verb that is not a string',
        object: role('ClusterRole', 'x', [
          { verbs: ['get', 7] as unknown as string[], apiGroups: [''], resources: ['pods'] },
        ]),
        malformed: { path: ['rules', 0, 'verbs', 1], message: 'must be a string, not a number' },
      },
      {
        name: 'labels not an object',
        object: { ...role('ClusterRole', 'x', []), metadata: { name: 'x', labels: ['a'] } },
        malformed: { path: ['metadata', 'labels'], message: 'must be an object, not a list' },
      },
    ];
  for (const row of rows) {
    const decision = evaluate(requestFor('ClusterRole', row.object), ruleset);
    t.equal(decision.allowed, false, row.name);
    t.same(decision.malformed, row.malformed, row.name);
  }
});
