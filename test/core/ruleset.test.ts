// The RuleSet: refused whole when anything is wrong, and every error names its field (and, from
// text, its line). Valid ones compile with their defaults filled in.

import t from 'tap';
import { DEFAULT_RULES_PATH, loadRuleSetFile, parseRuleSet } from '../../src/config/ruleset-source.js';
import { CHECKS, compileRuleSet, formatRuleSetError } from '../../src/core/index.js';
import { KNOWN_CHECKS } from '../helpers/rules.js';

const KNOWN = KNOWN_CHECKS;
const ruleSet = (rules: unknown, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'portcullis.io/v1',
  kind: 'RuleSet',
  rules,
  ...extra,
});
const rule = (check: string, params?: unknown, extra: Record<string, unknown> = {}) => ({
  name: 'r',
  check,
  ...(params === undefined ? {} : { params }),
  ...extra,
});
const errorsOf = (document: unknown): string[] => {
  const result = compileRuleSet(document);
  return result.ok ? [] : result.errors.map(formatRuleSetError);
};

t.test('the example of issue 2', async (t) => {
  const errors = errorsOf(
    ruleSet([
      { name: 'a', check: 'privileged' },
      { name: 'b', check: 'hostPath' },
      { name: 'c', check: 'privilegd' },
    ]),
  );
  t.equal(errors.length, 1);
  t.ok(errors[0]?.startsWith('rules[2].check: unknown check "privilegd"'), errors[0] ?? '');
  t.same(errors, [`rules[2].check: unknown check "privilegd"; ${KNOWN}`]);
});

t.test('envelope errors', async (t) => {
  const base = ruleSet([rule('privileged')]);
  const rows: [name: string, document: unknown, errors: string[]][] = [
    ['valid (distractor)', base, []],
    ['missing apiVersion', { kind: 'RuleSet', rules: [rule('privileged')] }, ['apiVersion: is required']],
    ['missing kind', { apiVersion: 'portcullis.io/v1', rules: [rule('privileged')] }, ['kind: is required']],
    ['missing everything', {}, ['apiVersion: is required', 'kind: is required', 'rules: is required']],
    [
      'wrong apiVersion',
      { ...base, apiVersion: 'portcullis.io/v2' },
      ['apiVersion: must be "portcullis.io/v1"'],
    ],
    ['wrong kind', { ...base, kind: 'Policy' }, ['kind: must be "RuleSet"']],
    ['not an object', 'rules: []', ['must be object']],
    ['a list', [base], ['must be object']],
    ['unknown top-level field', { ...base, exemption: {} }, ['exemption: unknown field']],
    [
      'unknown and invalid exemptions',
      { ...base, exemptions: { namespace: ['kube-system'], usernames: [''] } },
      [
        'exemptions.namespace: unknown field',
        'exemptions.usernames[0]: must NOT have fewer than 1 characters',
      ],
    ],
    ['empty rules', ruleSet([]), ['rules: must NOT have fewer than 1 items']],
    ['rules not a list', ruleSet({ r: rule('privileged') }), ['rules: must be array']],
    [
      'unknown rule field',
      ruleSet([rule('privileged', undefined, { param: {} })]),
      ['rules[0].param: unknown field'],
    ],
    ['missing check', ruleSet([{ name: 'r' }]), ['rules[0].check: is required']],
    ['missing name', ruleSet([{ check: 'privileged' }]), ['rules[0].name: is required']],
    [
      'bad action',
      ruleSet([rule('privileged', undefined, { action: 'block' })]),
      ['rules[0].action: must be one of: "deny", "warn", "audit"'],
    ],
    [
      'a name that is not a DNS label',
      ruleSet([{ name: 'No_Privileged', check: 'privileged' }]),
      ['rules[0].name: must match pattern "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"'],
    ],
    [
      'namespaces not a list',
      ruleSet([rule('privileged', undefined, { namespaces: 'team-a' })]),
      ['rules[0].namespaces: must be array'],
    ],
    [
      'duplicate names',
      ruleSet([
        { name: 'a', check: 'privileged' },
        { name: 'b', check: 'seccomp' },
        { name: 'a', check: 'hostPath' },
      ]),
      ['rules[2].name: duplicate rule name "a" (also rules[0])'],
    ],
    [
      'errors in several rules are all reported',
      ruleSet([
        { name: 'a', check: 'privilegd' },
        { name: 'b', check: 'hostPath', params: { allowedPaths: [{ pathPrefix: 'var' }] } },
      ]),
      [
        `rules[0].check: unknown check "privilegd"; ${KNOWN}`,
        'rules[1].params.allowedPaths[0].pathPrefix: must be an absolute path, not "var"',
      ],
    ],
  ];
  for (const [name, document, errors] of rows) t.same(errorsOf(document), errors, name);
});

t.test('params errors, per check, with their paths', async (t) => {
  const rows: [check: string, params: unknown, errors: string[]][] = [
    ['privileged', {}, []],
    ['privileged', { allowPrivileged: true }, ['rules[0].params.allowPrivileged: unknown field']],
    ['privileged', [], ['rules[0].params: must be object']],
    ['hostPath', { allowedPaths: [{ pathPrefix: '/var/log', readOnly: true }] }, []],
    [
      'hostPath',
      { allowedPaths: [{ pathPrefix: 'var' }] },
      ['rules[0].params.allowedPaths[0].pathPrefix: must be an absolute path, not "var"'],
    ],
    [
      'hostPath',
      { allowedPaths: [{ pathPrefix: '/opt' }, { pathPrefix: './logs' }] },
      ['rules[0].params.allowedPaths[1].pathPrefix: must be an absolute path, not "./logs"'],
    ],
    [
      'hostPath',
      { allowedPaths: [{ path: '/var' }] },
      [
        'rules[0].params.allowedPaths[0].pathPrefix: is required',
        'rules[0].params.allowedPaths[0].path: unknown field',
      ],
    ],
    [
      'hostPath',
      { allowedPaths: [{ pathPrefix: '/var', readOnly: 'yes' }] },
      ['rules[0].params.allowedPaths[0].readOnly: must be boolean'],
    ],
    ['trustedRegistries', {}, ['rules[0].params.registries: is required']],
    [
      'trustedRegistries',
      { registries: ['ghcr.io', '*'] },
      [
        'rules[0].params.registries[1]: "*" must not contain "*": an entry already trusts every repository below it',
      ],
    ],
    ['seccomp', { requireProfile: 'false' }, ['rules[0].params.requireProfile: must be boolean']],
    ['seccomp', { mutate: false, level: 'restricted' }, ['rules[0].params.level: unknown field']],
    ['clusterAdminBinding', { roles: [] }, ['rules[0].params.roles: must NOT have fewer than 1 items']],
    [
      'clusterAdminBinding',
      { allowedSubjects: [{ kind: 'user', name: 'x' }] },
      ['rules[0].params.allowedSubjects[0].kind: must be one of: "User", "Group", "ServiceAccount"'],
    ],
    [
      'clusterAdminBinding',
      { allowedSubjects: [{ kind: 'Group', name: 'a' }, { kind: 'User' }] },
      ['rules[0].params.allowedSubjects[1].name: is required'],
    ],
    ['hostNamespaces', { hostNetwork: true }, ['rules[0].params.hostNetwork: unknown field']],
    [
      'hostPorts',
      { allowed: [{ min: 80, max: 79 }] },
      ['rules[0].params.allowed[0].max: must not be below min (80)'],
    ],
    [
      'capabilities',
      { allowedAdd: ['CAP_NET_ADMIN'] },
      [
        'rules[0].params.allowedAdd[0]: must be a capability name in upper case without "CAP_" (like "NET_ADMIN"), not "CAP_NET_ADMIN"',
      ],
    ],
    ['allowPrivilegeEscalation', { allow: false }, ['rules[0].params.allow: unknown field']],
    ['runAsNonRoot', {}, []],
    ['runAsUser', { min: 1 }, ['rules[0].params.min: unknown field']],
    ['appArmor', { allowUnconfined: true }, ['rules[0].params.allowUnconfined: unknown field']],
    ['seLinux', { types: ['spc_t'] }, ['rules[0].params.types: unknown field']],
    ['cel', { validations: [{ expression: 'true' }] }, ['rules[0].params.matchConstraints: is required']],
    [
      'cel',
      {
        matchConstraints: { resourceRules: [{ resources: ['pods'] }] },
        validations: [{ expression: 'objet' }],
      },
      ["rules[0].params.validations[0].expression:1:1: undeclared reference to 'objet'"],
    ],
    ['procMount', { relaxInUserNamespace: 1 }, ['rules[0].params.relaxInUserNamespace: must be boolean']],
    ['hostProbes', { allowedHosts: ['x'] }, ['rules[0].params.allowedHosts: unknown field']],
    [
      'sysctls',
      { allowed: ['kernel.msg*'] },
      ['rules[0].params.allowed[0]: "kernel.msg*" is not a sysctl name'],
    ],
    ['volumeTypes', { allowed: 'secret' }, ['rules[0].params.allowed: must be array']],
    [
      'podSecurity',
      { level: 'baseline', version: 'v1', exemptControls: ['runAsNonRoot'] },
      [
        'rules[0].params.version: must be "latest" or a Kubernetes minor version like "v1.37", not "v1"',
        'rules[0].params.exemptControls[0]: "runAsNonRoot" is not a control of level baseline',
      ],
    ],
    ['clusterAdminBinding', { denyEverybody: 'yes' }, ['rules[0].params.denyEverybody: must be boolean']],
    [
      'rbacPrivilege',
      { allowedRoles: [{ kind: 'RoleBinding', name: 'x' }] },
      ['rules[0].params.allowedRoles[0].kind: must be one of: "Role", "ClusterRole"'],
    ],
    [
      'rbacPrivilege',
      { allowedRoles: [{ kind: 'Role' }] },
      ['rules[0].params.allowedRoles[0].name: is required'],
    ],
    ['podExec', {}, []],
    [
      'podExec',
      { subresources: ['exec', 'proxy'] },
      ['rules[0].params.subresources[1]: must be one of: "exec", "attach", "portforward", "debug"'],
    ],
    [
      'podExec',
      { podSelector: { matchLabels: { debuggable: true } } },
      ['rules[0].params.podSelector.matchLabels.debuggable: must be string'],
    ],
  ];
  for (const [check, params, errors] of rows) {
    t.same(errorsOf(ruleSet([rule(check, params)])), errors, `${check} ${JSON.stringify(params)}`);
  }
  t.same(
    [...CHECKS.keys()].sort(),
    [...new Set(rows.map(([check]) => check))].sort(),
    'every check has rows',
  );
});

t.test('a valid RuleSet compiles with its defaults, and the input is left as it was', async (t) => {
  const document = ruleSet(
    [
      { name: 'seccomp', check: 'seccomp' },
      { name: 'admin', check: 'clusterAdminBinding', action: 'warn', params: {} },
    ],
    { exemptions: { namespaces: ['kube-system'] } },
  );
  const before = structuredClone(document);
  const result = compileRuleSet(document);
  if (!result.ok) {
    t.fail(JSON.stringify(result.errors));
    return;
  }
  t.same(document, before, 'defaults are not written into the caller’s document');
  t.same(
    result.ruleset.rules.map((r) => [r.name, r.check, r.action, r.compiled.target.id, r.compiled.params]),
    [
      ['seccomp', 'seccomp', 'deny', 'pod', { requireProfile: true, mutate: true }],
      [
        'admin',
        'clusterAdminBinding',
        'warn',
        'binding',
        {
          roles: ['cluster-admin'],
          allowedSubjects: [],
          denyClusterAdminInEffect: false,
          denyClusterWideSecretsAndPods: false,
          denyEverybody: false,
        },
      ],
    ],
  );
  t.equal(result.ruleset.exemptions.namespace('kube-system'), true);
  t.equal(result.ruleset.exemptions.namespace('kube-public'), false);
  t.equal(result.ruleset.exemptions.username('anyone'), false, 'no usernames: nobody is exempt');
});

/** Checks that rules/default.yaml does not use, each with why. */
const NOT_SHIPPED: ReadonlySet<string> = new Set([
  'cel', // a team's own rule: there is no policy of everyone's to ship
  // The default spells the controls out one rule each, so each can be scoped or relaxed alone.
  'podSecurity',
  // Restricted-only: they would warn on most workloads as published (root, default capabilities);
  // see the README's "The shipped rules".
  'allowPrivilegeEscalation',
  'runAsNonRoot',
  'runAsUser',
]);

t.test('rules/default.yaml compiles', async (t) => {
  const load = await loadRuleSetFile(DEFAULT_RULES_PATH);
  if (!load.ok) {
    t.fail(load.errors.join('\n'));
    return;
  }
  t.same(
    load.loaded.ruleset.rules.map((r) => [r.name, r.check, r.action]),
    [
      ['no-privileged', 'privileged', 'deny'],
      ['no-host-path', 'hostPath', 'deny'],
      ['trusted-registries', 'trustedRegistries', 'deny'],
      ['require-seccomp', 'seccomp', 'deny'],
      ['no-cluster-admin-binding', 'clusterAdminBinding', 'deny'],
      ['no-host-namespaces', 'hostNamespaces', 'deny'],
      ['baseline-capabilities', 'capabilities', 'deny'],
      ['no-host-ports', 'hostPorts', 'deny'],
      ['no-unconfined-apparmor', 'appArmor', 'deny'],
      ['default-selinux', 'seLinux', 'deny'],
      ['default-proc-mount', 'procMount', 'deny'],
      ['safe-sysctls', 'sysctls', 'deny'],
      ['no-probe-host', 'hostProbes', 'deny'],
      ['restricted-volumes', 'volumeTypes', 'warn'],
      ['no-rbac-privilege', 'rbacPrivilege', 'deny'],
      ['no-secret-reads', 'podExec', 'deny'],
      ['no-host-entry', 'podExec', 'deny'],
    ],
  );
  t.same(
    [...new Set(load.loaded.ruleset.rules.map((r) => r.check))].sort(),
    [...CHECKS.keys()].filter((id) => !NOT_SHIPPED.has(id)).sort(),
    'the shipped RuleSet uses every check but those not shipped on purpose',
  );
  t.equal(load.loaded.ruleset.exemptions.namespace('kube-system'), true);
  t.match(load.loaded.hash, /^sha256:[0-9a-f]{16}$/);
});

t.test('errors from RuleSet text carry the origin and the line', async (t) => {
  const lines = [
    'apiVersion: portcullis.io/v1', // 1
    'kind: RuleSet', // 2
    'rules:', // 3
    '  - name: a', // 4
    '    check: privileged', // 5
    '  - name: b', // 6
    '    check: hostPath', // 7
    '    params:', // 8
    '      allowedPaths:', // 9
    '        - pathPrefix: /var/log', // 10
    '        - pathPrefix: var', // 11
    '  - name: c', // 12
    '    check: privilegd', // 13
  ];
  t.same(parseRuleSet(lines.join('\n'), 'rules.yaml'), {
    ok: false,
    errors: [
      'rules.yaml:11: rules[1].params.allowedPaths[1].pathPrefix: must be an absolute path, not "var"',
      `rules.yaml:13: rules[2].check: unknown check "privilegd"; ${KNOWN}`,
    ],
  });
  // With the check fixed, the params error is left alone.
  const fixed = lines.join('\n').replace('check: privilegd', 'check: privileged');
  t.same(parseRuleSet(fixed, 'rules.yaml'), {
    ok: false,
    errors: [
      'rules.yaml:11: rules[1].params.allowedPaths[1].pathPrefix: must be an absolute path, not "var"',
    ],
  });
  // A missing field is reported at the line of the object that lacks it, and in the same pass as
  // the params error: no second round of errors after the first is fixed.
  const missing = `${fixed}\n  - name: d\n    action: warn\n`;
  t.same(parseRuleSet(missing, 'rules.yaml'), {
    ok: false,
    errors: [
      'rules.yaml:14: rules[3].check: is required',
      'rules.yaml:11: rules[1].params.allowedPaths[1].pathPrefix: must be an absolute path, not "var"',
    ],
  });

  const rows: [name: string, text: string, errors: RegExp][] = [
    [
      'a YAML syntax error',
      'apiVersion: portcullis.io/v1\nkind: RuleSet\nrules: [\n',
      /^rules\.yaml:4:1: .+/,
    ],
    ['a duplicate key', 'kind: RuleSet\nkind: RuleSet\n', /^rules\.yaml:2:1: .+/],
    ['two documents', 'kind: RuleSet\n---\nkind: RuleSet\n', /^rules\.yaml:3: holds more than one document$/],
    ['nothing at all', '# only a comment\n', /^rules\.yaml: holds no RuleSet$/],
  ];
  for (const [name, body, pattern] of rows) {
    const parsed = parseRuleSet(body, 'rules.yaml');
    t.equal(parsed.ok, false, name);
    if (!parsed.ok) t.match(parsed.errors, [pattern], name);
  }

  const json = JSON.stringify(ruleSet([rule('privileged')]));
  t.equal(parseRuleSet(json, 'rules.json').ok, true, 'JSON is read too');
});

t.test('the RuleSet hash ignores comments and layout', async (t) => {
  const a = parseRuleSet(
    'apiVersion: portcullis.io/v1\nkind: RuleSet\nrules: [{name: a, check: privileged}]\n',
    'a',
  );
  const b = parseRuleSet(
    '# edited\napiVersion: portcullis.io/v1\nkind: RuleSet\nrules:\n  - name: a   # why\n    check: privileged\n',
    'b',
  );
  const c = parseRuleSet(
    'apiVersion: portcullis.io/v1\nkind: RuleSet\nrules: [{name: b, check: privileged}]\n',
    'c',
  );
  if (!a.ok || !b.ok || !c.ok) {
    t.fail('all three compile');
    return;
  }
  t.equal(a.loaded.hash, b.loaded.hash);
  t.not(a.loaded.hash, c.loaded.hash, 'a changed rule changes the hash (distractor)');
});

t.test('an unreadable RuleSet file', async (t) => {
  const load = await loadRuleSetFile('/nonexistent/rules.yaml');
  t.same(load, { ok: false, errors: ['/nonexistent/rules.yaml: cannot read RuleSet (ENOENT)'] });
});
