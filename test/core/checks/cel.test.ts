// The `cel` check: a ValidatingAdmissionPolicy's semantics (matchConstraints, matchConditions,
// variables, validations, messages, reasons, failurePolicy, auditAnnotations, params,
// namespaceObject) and the load-time errors. The CEL environment's functions have their own table
// in test/core/cel/environment.test.ts; the same policies judged by a real API server's VAP are
// compared in test/e2e/cel-vap.test.ts.

import t from 'tap';
import {
  compileRuleSet,
  evaluate,
  formatRuleSetError,
  type AdmissionRequest,
  type EvaluationContext,
  type Operation,
} from '../../../src/core/index.js';
import { expectDecision } from '../../helpers/decisions.js';
import { oneRule } from '../../helpers/rules.js';

interface RequestShape {
  group?: string;
  version?: string;
  resource: string;
  kind: string;
  subResource?: string;
  operation?: Operation;
  namespace?: string;
  name?: string;
  username?: string;
  object?: unknown;
  oldObject?: unknown;
}

function request(shape: RequestShape): AdmissionRequest {
  const group = shape.group ?? '';
  const version = shape.version ?? 'v1';
  return {
    uid: 'u-1',
    kind: { group, version, kind: shape.kind },
    resource: { group, version, resource: shape.resource },
    ...(shape.subResource === undefined ? {} : { subResource: shape.subResource }),
    ...(shape.namespace === undefined ? {} : { namespace: shape.namespace }),
    ...(shape.name === undefined ? {} : { name: shape.name }),
    operation: shape.operation ?? 'CREATE',
    userInfo: { username: shape.username ?? 'alice', groups: ['system:authenticated'] },
    ...(shape.object === undefined ? {} : { object: shape.object }),
    ...(shape.oldObject === undefined ? {} : { oldObject: shape.oldObject }),
  };
}

const deployment = (labels: Record<string, string> | undefined, replicas = 2): Record<string, unknown> => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop', ...(labels === undefined ? {} : { labels }) },
  spec: { replicas, template: { spec: { containers: [{ name: 'app', image: 'nginx' }] } } },
});
const deploymentRequest = (object: unknown, extra: Partial<RequestShape> = {}): AdmissionRequest =>
  request({
    group: 'apps',
    resource: 'deployments',
    kind: 'Deployment',
    namespace: 'shop',
    name: 'web',
    object,
    ...extra,
  });

const DEPLOYMENTS = {
  resourceRules: [
    {
      apiGroups: ['apps'],
      apiVersions: ['v1'],
      operations: ['CREATE', 'UPDATE'],
      resources: ['deployments'],
    },
  ],
};

/** The policy of the issue, as a team would paste it. */
const OWNER_LABEL = {
  matchConstraints: DEPLOYMENTS,
  matchConditions: [{ name: 'not-system', expression: "!request.userInfo.username.startsWith('system:')" }],
  variables: [{ name: 'labels', expression: 'object.metadata.?labels.orValue({})' }],
  validations: [
    {
      expression: "'owner' in variables.labels",
      messageExpression: "'Deployment ' + object.metadata.name + ' has no owner label'",
      reason: 'Invalid',
    },
  ],
  auditAnnotations: [{ key: 'owner', valueExpression: "variables.labels[?'owner'].orValue('none')" }],
};

t.test('the owner-label policy of the issue', async (t) => {
  const rules = oneRule('cel', OWNER_LABEL);
  const denied = evaluate(deploymentRequest(deployment({ app: 'web' })), rules);
  expectDecision(t, denied, { messages: ['Deployment web has no owner label [r]'], fields: [''] });
  t.equal(denied.violations[0]?.reason, 'Invalid');
  t.same(denied.auditAnnotations, { 'r.owner': 'none' });

  const allowed = evaluate(deploymentRequest(deployment({ owner: 'team-a' })), rules);
  expectDecision(t, allowed, { messages: [] });
  t.same(allowed.auditAnnotations, { 'r.owner': 'team-a' });

  const system = evaluate(
    deploymentRequest(deployment({}), { username: 'system:serviceaccount:kube-system:x' }),
    rules,
  );
  expectDecision(t, system, { messages: [] });
  t.equal(system.auditAnnotations, undefined, 'a false matchCondition skips the rule: no annotations');

  // Distractors the matchConstraints do not name.
  const statefulSet = request({
    group: 'apps',
    resource: 'statefulsets',
    kind: 'StatefulSet',
    namespace: 'shop',
    object: deployment({}),
  });
  expectDecision(t, evaluate(statefulSet, rules), { messages: [] });
  const scale = deploymentRequest(deployment({}), { subResource: 'scale' });
  expectDecision(t, evaluate(scale, rules), { messages: [] });
  const deletion = deploymentRequest(null, { operation: 'DELETE', oldObject: deployment({}) });
  expectDecision(t, evaluate(deletion, rules), { messages: [] });
  const betaGroup = deploymentRequest(deployment({}), { version: 'v1beta1' });
  expectDecision(t, evaluate(betaGroup, rules), { messages: [] });
});

interface MatchCase {
  name: string;
  constraints: Record<string, unknown>;
  request: AdmissionRequest;
  context?: EvaluationContext;
  judged: boolean;
}

const service = (extra: Partial<RequestShape> = {}): AdmissionRequest =>
  request({
    resource: 'services',
    kind: 'Service',
    namespace: 'dev',
    name: 'svc',
    object: { metadata: { name: 'svc', labels: { tier: 'web' } }, spec: { type: 'LoadBalancer' } },
    ...extra,
  });
const rule = (r: Record<string, unknown>) => ({
  apiGroups: [''],
  apiVersions: ['v1'],
  operations: ['*'],
  ...r,
});

const matchCases: MatchCase[] = [
  {
    name: 'resource listed',
    constraints: { resourceRules: [rule({ resources: ['services'] })] },
    request: service(),
    judged: true,
  },
  {
    name: 'another resource (distractor)',
    constraints: { resourceRules: [rule({ resources: ['pods'] })] },
    request: service(),
    judged: false,
  },
  {
    name: '"*" is every resource',
    constraints: { resourceRules: [rule({ resources: ['*'] })] },
    request: service(),
    judged: true,
  },
  {
    name: '"*" is no subresource',
    constraints: { resourceRules: [rule({ resources: ['*'] })] },
    request: service({ subResource: 'status' }),
    judged: false,
  },
  {
    name: '"*/*" is every subresource',
    constraints: { resourceRules: [rule({ resources: ['*/*'] })] },
    request: service({ subResource: 'status' }),
    judged: true,
  },
  {
    name: '"services/*"',
    constraints: { resourceRules: [rule({ resources: ['services/*'] })] },
    request: service({ subResource: 'status' }),
    judged: true,
  },
  {
    name: '"services/*" is not services itself',
    constraints: { resourceRules: [rule({ resources: ['services/*'] })] },
    request: service(),
    judged: false,
  },
  {
    name: '"*/status"',
    constraints: { resourceRules: [rule({ resources: ['*/status'] })] },
    request: service({ subResource: 'status' }),
    judged: true,
  },
  {
    name: 'operation not listed',
    constraints: { resourceRules: [rule({ resources: ['services'], operations: ['UPDATE'] })] },
    request: service(),
    judged: false,
  },
  {
    name: 'group not listed',
    constraints: { resourceRules: [rule({ resources: ['services'], apiGroups: ['apps'] })] },
    request: service(),
    judged: false,
  },
  {
    name: 'resourceNames: the name',
    constraints: { resourceRules: [rule({ resources: ['services'], resourceNames: ['svc'] })] },
    request: service(),
    judged: true,
  },
  {
    name: 'resourceNames: another name',
    constraints: { resourceRules: [rule({ resources: ['services'], resourceNames: ['other'] })] },
    request: service(),
    judged: false,
  },
  {
    name: 'scope Cluster on a namespaced object',
    constraints: { resourceRules: [rule({ resources: ['services'], scope: 'Cluster' })] },
    request: service(),
    judged: false,
  },
  {
    name: 'scope Namespaced',
    constraints: { resourceRules: [rule({ resources: ['services'], scope: 'Namespaced' })] },
    request: service(),
    judged: true,
  },
  {
    name: 'excludeResourceRules win',
    constraints: {
      resourceRules: [rule({ resources: ['*'] })],
      excludeResourceRules: [rule({ resources: ['services'] })],
    },
    request: service(),
    judged: false,
  },
  {
    name: 'objectSelector matches the labels',
    constraints: {
      resourceRules: [rule({ resources: ['services'] })],
      objectSelector: { matchLabels: { tier: 'web' } },
    },
    request: service(),
    judged: true,
  },
  {
    name: 'objectSelector does not',
    constraints: {
      resourceRules: [rule({ resources: ['services'] })],
      objectSelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['web'] }] },
    },
    request: service(),
    judged: false,
  },
  {
    name: 'namespaceSelector on the namespace object given',
    constraints: {
      resourceRules: [rule({ resources: ['services'] })],
      namespaceSelector: { matchLabels: { env: 'dev' } },
    },
    request: service(),
    context: { namespaces: new Map([['dev', { metadata: { name: 'dev', labels: { env: 'dev' } } }]]) },
    judged: true,
  },
  {
    name: 'namespaceSelector: namespace unknown, only its name label',
    constraints: {
      resourceRules: [rule({ resources: ['services'] })],
      namespaceSelector: { matchLabels: { env: 'dev' } },
    },
    request: service(),
    judged: false,
  },
  {
    name: 'namespaceSelector: kubernetes.io/metadata.name is always known',
    constraints: {
      resourceRules: [rule({ resources: ['services'] })],
      namespaceSelector: {
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['dev'] }],
      },
    },
    request: service(),
    judged: true,
  },
  {
    name: 'namespaceSelector does not filter cluster-scoped objects',
    constraints: {
      resourceRules: [rule({ resources: ['nodes'] })],
      namespaceSelector: { matchLabels: { env: 'dev' } },
    },
    request: request({ resource: 'nodes', kind: 'Node', name: 'n1', object: { metadata: { name: 'n1' } } }),
    judged: true,
  },
];

t.test('matchConstraints', async (t) => {
  for (const c of matchCases) {
    const rules = oneRule('cel', {
      matchConstraints: c.constraints,
      validations: [{ expression: 'false', message: 'judged' }],
    });
    const decision = evaluate(c.request, rules, c.context);
    t.same(
      decision.violations.map((v) => v.message),
      c.judged ? ['judged'] : [],
      c.name,
    );
  }
});

interface ValidationCase {
  name: string;
  params: Record<string, unknown>;
  object?: unknown;
  messages: string[];
  reason?: string;
}

const SERVICES = { resourceRules: [rule({ resources: ['services'] })] };
const noLoadBalancer = (extra: Record<string, unknown> = {}) => ({
  matchConstraints: SERVICES,
  validations: [{ expression: "object.spec.type != 'LoadBalancer'", ...extra }],
});

const validationCases: ValidationCase[] = [
  {
    name: 'no message: the expression',
    params: noLoadBalancer(),
    messages: ["failed expression: object.spec.type != 'LoadBalancer'"],
  },
  {
    name: 'message',
    params: noLoadBalancer({ message: 'no LoadBalancer in dev' }),
    messages: ['no LoadBalancer in dev'],
  },
  {
    name: 'messageExpression wins over message',
    params: noLoadBalancer({
      message: 'static',
      messageExpression: "'Service ' + object.metadata.name + ' is a ' + object.spec.type",
    }),
    messages: ['Service svc is a LoadBalancer'],
  },
  {
    name: 'messageExpression error: falls back to message',
    params: noLoadBalancer({ message: 'static', messageExpression: 'object.metadata.missing' }),
    messages: ['static'],
  },
  {
    name: 'messageExpression empty: falls back',
    params: noLoadBalancer({ message: 'static', messageExpression: "'  '" }),
    messages: ['static'],
  },
  {
    name: 'messageExpression with a line break: falls back',
    params: noLoadBalancer({ message: 'static', messageExpression: "'a\\nb'" }),
    messages: ['static'],
  },
  {
    name: 'reason Invalid by default',
    params: noLoadBalancer({ message: 'm' }),
    messages: ['m'],
    reason: 'Invalid',
  },
  {
    name: 'reason given',
    params: noLoadBalancer({ message: 'm', reason: 'Forbidden' }),
    messages: ['m'],
    reason: 'Forbidden',
  },
  {
    name: 'the first failing validation gives the message',
    params: {
      matchConstraints: SERVICES,
      validations: [
        { expression: 'true', message: 'first passes' },
        { expression: 'false', message: 'second fails' },
        { expression: 'false', message: 'third fails too' },
      ],
    },
    messages: ['second fails'],
  },
  {
    name: 'runtime error, failurePolicy Fail (default): denied with the error',
    params: { matchConstraints: SERVICES, validations: [{ expression: 'object.spec.ports[0].port > 0' }] },
    messages: ["expression 'object.spec.ports[0].port > 0' resulted in error: no such key: ports"],
  },
  {
    name: 'runtime error, failurePolicy Ignore: skipped',
    params: {
      failurePolicy: 'Ignore',
      matchConstraints: SERVICES,
      validations: [
        { expression: 'object.spec.ports[0].port > 0' },
        { expression: 'false', message: 'next' },
      ],
    },
    messages: ['next'],
  },
  {
    name: 'cost limit exceeded: failurePolicy Fail',
    params: {
      matchConstraints: SERVICES,
      variables: [{ name: 'ten', expression: '[0,1,2,3,4,5,6,7,8,9]' }],
      validations: [
        {
          expression:
            'variables.ten.all(a, variables.ten.all(b, variables.ten.all(c, variables.ten.all(d, variables.ten.all(e, variables.ten.all(f, a + b + c + d + e + f >= 0))))))',
        },
      ],
    },
    messages: [
      "expression 'variables.ten.all(a, variables.ten.all(b, variables.ten.all(c, variables.ten.all(d, variables.ten.all(e, variables.ten.all(f, a + b + c + d + e + f >= 0))))))': validation failed due to running out of cost budget, no further validation rules will be run",
    ],
  },
  {
    name: 'cost limit exceeded: failurePolicy Ignore',
    params: {
      failurePolicy: 'Ignore',
      matchConstraints: SERVICES,
      variables: [{ name: 'ten', expression: '[0,1,2,3,4,5,6,7,8,9]' }],
      validations: [
        {
          expression:
            'variables.ten.all(a, variables.ten.all(b, variables.ten.all(c, variables.ten.all(d, variables.ten.all(e, variables.ten.all(f, a >= 0))))))',
        },
      ],
    },
    messages: [],
  },
  {
    name: 'a matchCondition error with failurePolicy Fail',
    params: {
      matchConstraints: SERVICES,
      matchConditions: [{ name: 'has-x', expression: 'object.x == 1' }],
      validations: [{ expression: 'true' }],
    },
    messages: ["matchCondition 'has-x' resulted in error: no such key: x"],
  },
  {
    name: 'a false matchCondition wins over another one failing',
    params: {
      matchConstraints: SERVICES,
      matchConditions: [
        { name: 'broken', expression: 'object.x == 1' },
        { name: 'never', expression: 'false' },
      ],
      validations: [{ expression: 'false' }],
    },
    messages: [],
  },
  {
    name: 'params is paramsObject',
    params: {
      matchConstraints: SERVICES,
      paramKind: { apiVersion: 'v1', kind: 'ConfigMap' },
      paramsObject: { data: { forbidden: 'LoadBalancer' } },
      validations: [
        {
          expression: 'object.spec.type != params.data.forbidden',
          messageExpression: "'type ' + params.data.forbidden + ' is forbidden'",
        },
      ],
    },
    messages: ['type LoadBalancer is forbidden'],
  },
  {
    name: 'params is null without paramsObject',
    params: {
      matchConstraints: SERVICES,
      validations: [{ expression: 'params != null', message: 'no params' }],
    },
    messages: ['no params'],
  },
  {
    name: 'integers are int: whole JSON numbers add to ints',
    params: {
      matchConstraints: SERVICES,
      validations: [
        {
          expression: 'object.spec.replicas + 1 == 4 && type(object.spec.replicas) == int',
          message: 'not int',
        },
      ],
    },
    object: { metadata: { name: 'svc' }, spec: { replicas: 3 } },
    messages: [],
  },
  {
    name: 'variables in order, a later one reads an earlier one',
    params: {
      matchConstraints: SERVICES,
      variables: [
        { name: 'spec', expression: 'object.spec' },
        { name: 'isLB', expression: "variables.spec.type == 'LoadBalancer'" },
      ],
      validations: [{ expression: '!variables.isLB', message: 'LB' }],
    },
    messages: ['LB'],
  },
  {
    name: 'a variable that is never read is never evaluated (its error does not matter)',
    params: {
      matchConstraints: SERVICES,
      variables: [{ name: 'broken', expression: 'object.nothing.here' }],
      validations: [{ expression: 'true' }],
    },
    messages: [],
  },
];

t.test('validations, messages, failurePolicy, params', async (t) => {
  for (const c of validationCases) {
    const decision = evaluate(
      service(c.object === undefined ? {} : { object: c.object }),
      oneRule('cel', c.params),
    );
    t.same(
      decision.violations.map((v) => v.message),
      c.messages,
      c.name,
    );
    if (c.reason !== undefined) t.equal(decision.violations[0]?.reason, c.reason, `${c.name}: reason`);
  }
});

t.test('namespaceObject', async (t) => {
  const params = {
    matchConstraints: SERVICES,
    validations: [
      {
        expression: "namespaceObject == null || namespaceObject.metadata.?labels.?env.orValue('') != 'prod'",
        messageExpression: "'no LoadBalancer in ' + namespaceObject.metadata.name",
      },
    ],
  };
  const rules = oneRule('cel', params);
  const prod = {
    namespaces: new Map([['dev', { metadata: { name: 'dev', labels: { env: 'prod', replicas: 3 } } }]]),
  };
  t.same(
    evaluate(service(), rules, prod).violations.map((v) => v.message),
    ['no LoadBalancer in dev'],
  );
  t.same(evaluate(service(), rules).violations, [], 'unknown namespace: null');
  const other = {
    namespaces: new Map([['other', { metadata: { name: 'other', labels: { env: 'prod' } } }]]),
  };
  t.same(evaluate(service(), rules, other).violations, [], 'another namespace (distractor)');
});

t.test('the rule action applies to CEL findings', async (t) => {
  const decision = evaluate(service(), oneRule('cel', noLoadBalancer({ message: 'LB' }), { action: 'warn' }));
  t.equal(decision.allowed, true);
  t.same(
    decision.violations.map((v) => `${v.action}: ${v.message}`),
    ['warn: LB'],
  );
});

t.test('auditAnnotations: null omits, failures and passes alike', async (t) => {
  const rules = oneRule('cel', {
    matchConstraints: SERVICES,
    validations: [{ expression: 'true' }],
    auditAnnotations: [
      { key: 'type', valueExpression: 'object.spec.type' },
      { key: 'absent', valueExpression: 'null' },
    ],
  });
  t.same(evaluate(service(), rules).auditAnnotations, { 'r.type': 'LoadBalancer' });
});

interface LoadCase {
  name: string;
  params: Record<string, unknown>;
  errors: string[];
}

const loadCases: LoadCase[] = [
  {
    name: 'an undeclared reference, with its column',
    params: {
      matchConstraints: SERVICES,
      validations: [{ expression: 'true' }, { expression: "has(object.spec) && objet.spec.type == 'x'" }],
    },
    errors: ["rules[0].params.validations[1].expression:1:21: undeclared reference to 'objet'"],
  },
  {
    name: 'authorizer is refused, saying so',
    params: {
      matchConstraints: SERVICES,
      validations: [{ expression: "authorizer.group('').resource('pods').check('get').allowed()" }],
    },
    errors: [
      "rules[0].params.validations[0].expression:1:1: undeclared reference to 'authorizer': Portcullis has no authorizer (it cannot ask the API server's authorization); rules using it are refused",
    ],
  },
  {
    name: 'a syntax error on line 2',
    params: { matchConstraints: SERVICES, validations: [{ expression: 'true &&\n  (1 + )' }] },
    errors: ['rules[0].params.validations[0].expression:2:8: Unexpected token: RPAREN'],
  },
  {
    name: 'a validation that is not bool',
    params: { matchConstraints: SERVICES, validations: [{ expression: "'yes'" }] },
    errors: ['rules[0].params.validations[0].expression: must evaluate to bool, not string'],
  },
  {
    name: 'a messageExpression that is not a string',
    params: { matchConstraints: SERVICES, validations: [{ expression: 'true', messageExpression: '1' }] },
    errors: ['rules[0].params.validations[0].messageExpression: must evaluate to string, not int'],
  },
  {
    name: 'an undeclared variable, and a forward reference',
    params: {
      matchConstraints: SERVICES,
      variables: [
        { name: 'a', expression: 'variables.b' },
        { name: 'b', expression: '1' },
      ],
      validations: [{ expression: 'variables.c == 1' }],
    },
    errors: [
      'rules[0].params.variables[0].expression:1:11: No such key: b',
      'rules[0].params.validations[0].expression:1:11: No such key: c',
    ],
  },
  {
    name: 'a literal pattern that is not RE2',
    params: {
      matchConstraints: SERVICES,
      validations: [{ expression: "object.metadata.name.matches('^(?!kube-)')" }],
    },
    errors: [
      'rules[0].params.validations[0].expression:1:30: compilation failed: invalid regular expression "^(?!kube-)": error parsing regexp: invalid or unsupported Perl syntax: `(?!`',
    ],
  },
  {
    name: 'no resourceRules, no validations',
    params: { matchConstraints: {} },
    errors: [
      'rules[0].params.validations: at least one of validations or auditAnnotations is required',
      'rules[0].params.matchConstraints.resourceRules: must name at least one resource rule',
    ],
  },
  {
    name: 'an unknown field (a typo of a VAP field)',
    params: { matchConstraints: SERVICES, validation: [{ expression: 'true' }] },
    errors: ['rules[0].params.validation: unknown field'],
  },
  {
    name: 'a bad audit annotation key and a message with a line break',
    params: {
      matchConstraints: SERVICES,
      validations: [{ expression: 'true', message: 'a\nb' }],
      auditAnnotations: [{ key: 'has/slash', valueExpression: "'x'" }],
    },
    errors: [
      'rules[0].params.validations[0].message: must not contain line breaks',
      'rules[0].params.auditAnnotations[0].key: must be a valid annotation key part (at most 63 alphanumeric characters, -, _ or .)',
    ],
  },
  {
    name: 'more than 64 matchConditions',
    params: {
      matchConstraints: SERVICES,
      matchConditions: Array.from({ length: 65 }, (_, i) => ({ name: `c${i}`, expression: 'true' })),
      validations: [{ expression: 'true' }],
    },
    errors: ['rules[0].params.matchConditions: must have at most 64 items'],
  },
];

t.test('load-time errors refuse the RuleSet, naming rule, field and column', async (t) => {
  for (const c of loadCases) {
    const result = compileRuleSet({
      apiVersion: 'portcullis.io/v1',
      kind: 'RuleSet',
      rules: [{ name: 'r', check: 'cel', params: c.params }],
    });
    t.same(result.ok ? [] : result.errors.map(formatRuleSetError), c.errors, c.name);
  }
});
