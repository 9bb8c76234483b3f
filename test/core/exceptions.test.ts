// Exceptions in the RuleSet: what compiles, what matches, and when they are in force. The time is
// an input of evaluate, so every row states the instant it is judged at.

import t from 'tap';
import {
  compileRuleSet,
  denyMessage,
  evaluate,
  formatRuleSetError,
  outcome,
  warnings,
} from '../../src/core/index.js';
import { podSpec, requestFor } from '../helpers/requests.js';

const RULES = [
  { name: 'no-privileged', check: 'privileged' },
  { name: 'registries', check: 'trustedRegistries', params: { registries: ['registry.k8s.io'] } },
];
const LEGACY = {
  name: 'legacy-exporter',
  rules: ['no-privileged'],
  namespaces: ['monitoring'],
  names: ['exporter-*'],
  reason: 'SEC-1234: reads the node until the eBPF exporter ships',
  granted: '2026-11-01',
  expires: '2027-01-15',
};

function compile(exceptions: unknown[], extra: Record<string, unknown> = {}) {
  return compileRuleSet({
    apiVersion: 'portcullis.io/v1',
    kind: 'RuleSet',
    rules: RULES,
    exceptions,
    ...extra,
  });
}
function ruleset(exceptions: unknown[]) {
  const result = compile(exceptions);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.ruleset;
}

t.test('what a RuleSet refuses, naming the field', async (t) => {
  const rows: [
    name: string,
    exception: Record<string, unknown>,
    errors: string[],
    extra?: Record<string, unknown>,
  ][] = [
    ['no reason', { ...LEGACY, reason: undefined }, ['exceptions[0].reason: is required']],
    [
      'a reason too short to say anything',
      { ...LEGACY, reason: 'because' },
      ['exceptions[0].reason: must NOT have fewer than 10 characters'],
    ],
    ['no expiry', { ...LEGACY, expires: undefined }, ['exceptions[0].expires: is required']],
    [
      'an expiry before the grant',
      { ...LEGACY, expires: '2026-10-01' },
      ['exceptions[0].expires: must be after granted (2026-11-01)'],
    ],
    [
      'longer than the default maximum of 90 days',
      { ...LEGACY, expires: '2027-03-01' },
      ['exceptions[0].expires: is 120 days after granted; exceptionPolicy.maxLifetimeDays allows 90'],
    ],
    [
      "longer than the RuleSet's own maximum",
      LEGACY,
      ['exceptions[0].expires: is 75 days after granted; exceptionPolicy.maxLifetimeDays allows 30'],
      { exceptionPolicy: { maxLifetimeDays: 30 } },
    ],
    [
      'a date the calendar does not have',
      { ...LEGACY, expires: '2027-02-30' },
      ['exceptions[0].expires: must be a date (2027-01-31) or an RFC 3339 date-time, not "2027-02-30"'],
    ],
    [
      'a date-time without a zone',
      { ...LEGACY, granted: '2026-11-01T10:00:00' },
      [
        'exceptions[0].granted: must be a date (2026-11-15) or an RFC 3339 date-time, not "2026-11-01T10:00:00"',
      ],
    ],
    [
      'a rule the RuleSet does not have',
      { ...LEGACY, rules: ['no-privileged', 'no-hostpath'] },
      ['exceptions[0].rules[1]: names no rule of this RuleSet: "no-hostpath"'],
    ],
    [
      'no namespaces (a cluster-wide exception must say "*")',
      { ...LEGACY, namespaces: [] },
      ['exceptions[0].namespaces: must NOT have fewer than 1 items'],
    ],
    ['an unknown field', { ...LEGACY, approvedBy: 'me' }, ['exceptions[0].approvedBy: unknown field']],
  ];
  // An exception for every object is a rule switched off with a reason attached.
  const wide = (scope: string, rules = 'rule "no-privileged"') =>
    `exceptions[0].namespaces: ${scope} matches every object: that is ${rules} switched off with a reason attached, not an exception. ` +
    "Set the rule's action (warn or audit) or its namespaces/excludeNamespaces instead, or scope the exception to the namespaces, names or images it is for";
  rows.push(
    [
      'every namespace, no names',
      { ...LEGACY, namespaces: ['*'], names: undefined },
      [wide('"*" with no names')],
    ],
    [
      'every namespace, every name',
      { ...LEGACY, namespaces: ['*'], names: ['*'] },
      [wide('"*" with names ["*"]')],
    ],
    [
      '** is * too, and a narrow pattern beside * does not narrow it',
      { ...LEGACY, namespaces: ['monitoring', '**'], names: ['exporter-*', '*'] },
      [wide('"**" with names ["exporter-*","*"]')],
    ],
    [
      'images: ["*"] narrows nothing',
      { ...LEGACY, namespaces: ['*'], names: undefined, images: ['*'] },
      [wide('"*" with no names and images ["*"]')],
    ],
    [
      'every rule for every object',
      { ...LEGACY, rules: ['no-privileged', 'registries'], namespaces: ['*'], names: undefined },
      [wide('"*" with no names', 'rules "no-privileged", "registries"')],
    ],
    [
      'rules: ["*"]: rules are names, not globs (and the scope is still refused)',
      { ...LEGACY, rules: ['*'], namespaces: ['*'], names: undefined },
      [
        'exceptions[0].rules[0]: names no rule of this RuleSet: "*" (rules are exact names, not globs: list each rule it lifts)',
        wide('"*" with no names', 'rule "*"'),
      ],
    ],
    [
      'a glob in rules, narrow scope',
      { ...LEGACY, rules: ['no-*'] },
      [
        'exceptions[0].rules[0]: names no rule of this RuleSet: "no-*" (rules are exact names, not globs: list each rule it lifts)',
      ],
    ],
  );
  for (const [name, exception, errors, extra] of rows) {
    const result = compile([exception], extra);
    t.same(result.ok ? [] : result.errors.map(formatRuleSetError), errors, name);
  }
  const twice = compile([LEGACY, LEGACY]);
  t.same(twice.ok ? [] : twice.errors.map(formatRuleSetError), [
    'exceptions[1].name: duplicate exception name "legacy-exporter" (also exceptions[0])',
  ]);
  t.ok(compile([LEGACY]).ok, 'the exception as written compiles');
  const narrow: [name: string, exception: Record<string, unknown>][] = [
    ['every namespace, named workloads', { ...LEGACY, namespaces: ['*'] }],
    ['one namespace, every name', { ...LEGACY, names: undefined }],
    ['one namespace, names: ["*"]', { ...LEGACY, names: ['*'] }],
    [
      'every namespace and name, one image',
      { ...LEGACY, namespaces: ['*'], names: undefined, images: ['quay.io/prometheus/node-exporter:*'] },
    ],
    ['a namespace glob that is not only stars', { ...LEGACY, namespaces: ['*-*'], names: undefined }],
    ['every rule, for one workload', { ...LEGACY, rules: ['no-privileged', 'registries'] }],
  ];
  for (const [name, exception] of narrow) {
    const result = compile([exception]);
    t.same(result.ok ? [] : result.errors.map(formatRuleSetError), [], `accepted: ${name}`);
  }
  t.ok(
    compile([{ ...LEGACY, expires: '2027-01-15T00:30:00+01:00' }]).ok,
    'an RFC 3339 date-time with a zone (its UTC day is the day before)',
  );
});

const request = (namespace: string, name: string, image = 'registry.k8s.io/pause:3.10') =>
  requestFor(
    'Pod',
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace },
      spec: podSpec({ containers: [{ name: 'app', image, securityContext: { privileged: true } }] }),
    },
    { namespace },
  );
const IN_FORCE = new Date('2026-12-01T00:00:00Z');

t.test('what an exception in force lets through, and nothing else', async (t) => {
  const rows: [
    name: string,
    exceptions: unknown[],
    namespace: string,
    podName: string,
    now: Date | undefined,
    allowed: boolean,
  ][] = [
    ['the workload it names', [LEGACY], 'monitoring', 'exporter-abc12', IN_FORCE, true],
    ['another name in the namespace', [LEGACY], 'monitoring', 'grafana-0', IN_FORCE, false],
    ['the same name in another namespace', [LEGACY], 'default', 'exporter-abc12', IN_FORCE, false],
    [
      'before it is granted',
      [LEGACY],
      'monitoring',
      'exporter-abc12',
      new Date('2026-10-31T23:59:59Z'),
      false,
    ],
    [
      'the instant it is granted',
      [LEGACY],
      'monitoring',
      'exporter-abc12',
      new Date('2026-11-01T00:00:00Z'),
      true,
    ],
    [
      'the instant it expires (expiry is exclusive)',
      [LEGACY],
      'monitoring',
      'exporter-abc12',
      new Date('2027-01-15T00:00:00Z'),
      false,
    ],
    ['without a time: fail closed', [LEGACY], 'monitoring', 'exporter-abc12', undefined, false],
    [
      'an exception for another rule lifts nothing here',
      [{ ...LEGACY, rules: ['registries'] }],
      'monitoring',
      'exporter-abc12',
      IN_FORCE,
      false,
    ],
  ];
  for (const [name, exceptions, namespace, podName, now, allowed] of rows) {
    const decision = evaluate(
      request(namespace, podName),
      ruleset(exceptions),
      now === undefined ? {} : { now },
    );
    t.equal(decision.allowed, allowed, name);
  }
});

t.test('images: every container image must match, or the exception does not apply', async (t) => {
  const withImages = { ...LEGACY, images: ['registry.k8s.io/pause:*'] };
  const ok = evaluate(request('monitoring', 'exporter-1'), ruleset([withImages]), { now: IN_FORCE });
  t.equal(ok.allowed, true, 'its image');
  const other = evaluate(
    request('monitoring', 'exporter-1', 'registry.k8s.io/kube-proxy:v1.34.0'),
    ruleset([withImages]),
    { now: IN_FORCE },
  );
  t.equal(other.allowed, false, 'another image, same name: not lifted');
});

t.test('what the answer says: the exception, its expiry and reason; the outcome is allow', async (t) => {
  const decision = evaluate(request('monitoring', 'exporter-1'), ruleset([LEGACY]), { now: IN_FORCE });
  t.same(
    decision.violations.map((v) => v.exception),
    [{ name: 'legacy-exporter', reason: LEGACY.reason, expires: '2027-01-15T00:00:00.000Z' }],
  );
  t.same(warnings(decision), [
    `container "app": securityContext.privileged must not be true [no-privileged] allowed by exception "legacy-exporter" until 2027-01-15T00:00:00.000Z: ${LEGACY.reason}`,
  ]);
  t.equal(outcome(decision), 'allow', 'an excepted violation neither denies, warns nor audits');
  t.equal(denyMessage(decision), undefined);
});

t.test('an expired exception is not applied, and the denial says so', async (t) => {
  const decision = evaluate(request('monitoring', 'exporter-1'), ruleset([LEGACY]), {
    now: new Date('2027-02-01T00:00:00Z'),
  });
  t.equal(decision.allowed, false);
  t.same(decision.lapsedExceptions, [
    { name: 'legacy-exporter', reason: LEGACY.reason, expires: '2027-01-15T00:00:00.000Z', state: 'expired' },
  ]);
  t.equal(
    denyMessage(decision),
    'container "app": securityContext.privileged must not be true [no-privileged]; exception "legacy-exporter" expired at 2027-01-15T00:00:00.000Z and no longer applies',
  );
  const unrelated = evaluate(request('default', 'web'), ruleset([LEGACY]), {
    now: new Date('2027-02-01T00:00:00Z'),
  });
  t.equal(unrelated.lapsedExceptions, undefined, 'a request it never matched does not mention it');
});

t.test('an exception that names images never matches an object without containers', async (t) => {
  const binding = requestFor(
    'ClusterRoleBinding',
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'exporter-x' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'User', name: 'mallory' }],
    },
    {},
  );
  const result = compileRuleSet({
    apiVersion: 'portcullis.io/v1',
    kind: 'RuleSet',
    rules: [{ name: 'admin', check: 'clusterAdminBinding' }],
    exceptions: [{ ...LEGACY, rules: ['admin'], namespaces: ['*'], images: ['*'] }],
  });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  t.equal(evaluate(binding, result.ruleset, { now: IN_FORCE }).allowed, false, 'images given, none to match');
});
