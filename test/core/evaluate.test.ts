// evaluate(request, ruleset): which requests are judged, by which rules, and what the decision says.
// The checks' own tables live in test/core/checks/; this file is about the engine around them.

import t from 'tap';
import {
  denyMessage,
  evaluate,
  formatFieldPath,
  outcome,
  warnings,
  type AdmissionRequest,
  type Decision,
} from '../../src/core/index.js';
import { pod, POD_SPEC_PATHS, podSpec, requestFor, type RequestOptions } from '../helpers/requests.js';
import { oneRule, ruleSet } from '../helpers/rules.js';

const TRUSTED = 'registry.k8s.io/pause:3.10';

const RULES = ruleSet(
  [
    { name: 'no-privileged', check: 'privileged' },
    { name: 'trusted', check: 'trustedRegistries', params: { registries: ['registry.k8s.io'] } },
    { name: 'no-cluster-admin', check: 'clusterAdminBinding' },
  ],
  { namespaces: ['kube-*', 'tools'], usernames: ['admin'], groups: ['system:masters'] },
);

const app = (extra: Record<string, unknown> = {}) => ({ name: 'app', image: TRUSTED, ...extra });
const privilegedApp = app({ securityContext: { privileged: true } });
const privilegedPod = () => pod(podSpec({ containers: [privilegedApp] }));
const PRIVILEGED = 'container "app": securityContext.privileged must not be true [no-privileged]';
const texts = (d: Decision) => d.violations.map((v) => `${v.message} [${v.rule}]`);

/** A request for a kind the helper does not know (a CRD, or a built-in Portcullis does not judge). */
function requestOfKind(
  group: string,
  kind: string,
  object: unknown,
  options: RequestOptions = {},
): AdmissionRequest {
  return {
    ...requestFor('ConfigMap', object, options),
    kind: { group, version: 'v1', kind },
    resource: { group, version: 'v1', resource: `${kind.toLowerCase()}s` },
  };
}

t.test('every pod-template kind is judged at its pod spec', async (t) => {
  const ruleset = oneRule('privileged');
  for (const [kind, specPath] of POD_SPEC_PATHS) {
    const object = (spec: Record<string, unknown>) => ({
      apiVersion: 'v1',
      kind,
      metadata: { name: 'x' },
      ...specPath.reduceRight<Record<string, unknown>>((inner, key) => ({ [key]: inner }), spec),
    });
    const denied = evaluate(requestFor(kind, object(podSpec({ containers: [privilegedApp] }))), ruleset);
    t.same(texts(denied), ['container "app": securityContext.privileged must not be true [r]'], kind);
    t.same(
      denied.violations.map((v) => formatFieldPath(v.path)),
      [`${specPath.join('.')}.containers[0].securityContext.privileged`],
      kind,
    );
    t.equal(denied.allowed, false, kind);
    t.same(denied.rulesApplied, ['r'], kind);

    const allowed = evaluate(requestFor(kind, object(podSpec())), ruleset);
    t.same(
      allowed,
      { allowed: true, violations: [], rulesApplied: ['r'] },
      `${kind} without a privileged container`,
    );
  }
});

t.test('a kind Portcullis does not judge is allowed with no rules applied', async (t) => {
  const rows: [string, AdmissionRequest][] = [
    ['ConfigMap', requestFor('ConfigMap', { apiVersion: 'v1', kind: 'ConfigMap', data: { a: 'b' } })],
    ['a CRD called Deployment', requestOfKind('example.com', 'Deployment', privilegedPod())],
    ['a CRD called Pod', requestOfKind('example.com', 'Pod', privilegedPod())],
    ['a Role', requestOfKind('rbac.authorization.k8s.io', 'Role', { rules: [] })],
    ['a CRD called ClusterRoleBinding', requestOfKind('example.com', 'ClusterRoleBinding', { roleRef: 'x' })],
  ];
  for (const [name, request] of rows) {
    t.same(evaluate(request, RULES), { allowed: true, violations: [], rulesApplied: [] }, name);
  }
});

t.test('operations', async (t) => {
  for (const operation of ['DELETE', 'CONNECT'] as const) {
    const decision = evaluate(
      requestFor('Pod', privilegedPod(), { operation, oldObject: privilegedPod() }),
      RULES,
    );
    t.same(
      decision,
      {
        allowed: true,
        violations: [],
        skipped: { kind: 'operation', detail: `${operation} is not judged` },
        rulesApplied: [],
      },
      operation,
    );
    t.equal(outcome(decision), 'skip');
  }
  for (const operation of ['CREATE', 'UPDATE'] as const) {
    const decision = evaluate(requestFor('Pod', privilegedPod(), { operation }), RULES);
    t.same(texts(decision), [PRIVILEGED], `${operation} is judged (distractor)`);
    t.equal(decision.allowed, false);
  }
});

t.test('subresources', async (t) => {
  const skipped: [kind: string, subResource: string][] = [
    ['Deployment', 'status'],
    ['Deployment', 'scale'],
    ['Pod', 'status'],
    ['Pod', 'binding'],
  ];
  for (const [kind, subResource] of skipped) {
    const decision = evaluate(requestFor(kind, privilegedPod(), { subResource, operation: 'UPDATE' }), RULES);
    t.same(
      decision,
      {
        allowed: true,
        violations: [],
        skipped: { kind: 'subresource', detail: `subresource "${subResource}" is not judged` },
        rulesApplied: [],
      },
      `${kind}/${subResource}`,
    );
  }

  // `kubectl debug` adds an ephemeral container through pods/ephemeralcontainers: that is judged.
  const debugged = (image: string) =>
    pod(podSpec({ ephemeralContainers: [{ name: 'debugger', image, targetContainerName: 'app' }] }));
  const request = (image: string) =>
    requestFor('Pod', debugged(image), {
      subResource: 'ephemeralcontainers',
      operation: 'UPDATE',
      oldObject: pod(),
    });
  const denied = evaluate(request('busybox'), RULES);
  t.equal(denied.allowed, false, 'an untrusted ephemeral container is denied');
  t.same(texts(denied), [
    'ephemeralContainer "debugger": image "busybox" (docker.io/library/busybox) is not from a trusted registry [trusted]',
  ]);
  t.same(
    denied.violations.map((v) => formatFieldPath(v.path)),
    ['spec.ephemeralContainers[0].image'],
  );
  t.same(
    evaluate(request('registry.k8s.io/debug:1'), RULES).violations,
    [],
    'a trusted one is allowed (distractor)',
  );
});

t.test('exemptions are checked first', async (t) => {
  const rows: [name: string, options: RequestOptions, detail: string | undefined][] = [
    ['namespace glob', { namespace: 'kube-system' }, 'namespace "kube-system" matches exemptions.namespaces'],
    [
      'namespace glob, another match',
      { namespace: 'kube-public' },
      'namespace "kube-public" matches exemptions.namespaces',
    ],
    ['namespace literal', { namespace: 'tools' }, 'namespace "tools" matches exemptions.namespaces'],
    ['a glob is anchored (distractor)', { namespace: 'my-kube-system' }, undefined],
    ['a literal is whole (distractor)', { namespace: 'toolshed' }, undefined],
    ['username', { username: 'admin' }, 'user "admin" matches exemptions.usernames'],
    ['a similar username (distractor)', { username: 'admin2' }, undefined],
    [
      'group',
      { groups: ['system:authenticated', 'system:masters'] },
      'group "system:masters" matches exemptions.groups',
    ],
    ['other groups (distractor)', { groups: ['system:authenticated', 'masters'] }, undefined],
  ];
  for (const [name, options, detail] of rows) {
    const decision = evaluate(requestFor('Pod', privilegedPod(), options), RULES);
    if (detail === undefined) {
      t.same(texts(decision), [PRIVILEGED], name);
      t.equal(decision.skipped, undefined, name);
    } else {
      t.same(
        decision,
        { allowed: true, violations: [], skipped: { kind: 'exempt', detail }, rulesApplied: [] },
        name,
      );
    }
  }

  const malformed = evaluate(requestFor('Pod', 'not an object', { namespace: 'kube-system' }), RULES);
  t.same(malformed.skipped?.kind, 'exempt', 'before the object is read');
  t.equal(malformed.allowed, true);

  const binding = {
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'User', name: 'x' }],
  };
  t.equal(
    evaluate(requestFor('ClusterRoleBinding', binding, { username: 'admin' }), RULES).skipped?.kind,
    'exempt',
  );
  t.equal(
    evaluate(requestFor('ClusterRoleBinding', binding), RULES).allowed,
    false,
    'cluster-scoped, not exempt',
  );
});

t.test("exemptions '*' match every namespace and user, but never an empty one", async (t) => {
  const everyone = ruleSet(
    [
      { name: 'no-privileged', check: 'privileged' },
      { name: 'crb', check: 'clusterAdminBinding' },
    ],
    {
      namespaces: ['*'],
      usernames: ['*'],
    },
  );
  const binding = {
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'User', name: 'x' }],
  };
  const anonymous = (request: ReturnType<typeof requestFor>) => ({ ...request, userInfo: {} });
  const rows: [name: string, request: ReturnType<typeof requestFor>, detail: string | undefined][] = [
    [
      'a namespace',
      requestFor('Pod', privilegedPod(), { namespace: 'shop' }),
      'namespace "shop" matches exemptions.namespaces',
    ],
    [
      'no namespace, a user',
      requestFor('ClusterRoleBinding', binding, { username: 'bob' }),
      'user "bob" matches exemptions.usernames',
    ],
    [
      'no namespace (cluster-scoped) and no user: judged',
      anonymous(requestFor('ClusterRoleBinding', binding)),
      undefined,
    ],
    [
      'an empty namespace and an empty username: judged',
      requestFor('ClusterRoleBinding', binding, { namespace: '', username: '' }),
      undefined,
    ],
  ];
  for (const [name, request, detail] of rows) {
    const decision = evaluate(request, everyone);
    if (detail === undefined) {
      t.equal(decision.skipped, undefined, `${name}: not exempt`);
      t.equal(decision.allowed, false, `${name}: denied`);
    } else {
      t.same(decision.skipped, { kind: 'exempt', detail }, name);
    }
  }
});

t.test('rule scope: namespaces and excludeNamespaces', async (t) => {
  const ruleset = ruleSet([
    { name: 'priv-teams', check: 'privileged', namespaces: ['team-*'], excludeNamespaces: ['team-sandbox'] },
    {
      name: 'reg-not-dev',
      check: 'trustedRegistries',
      params: { registries: ['registry.k8s.io'] },
      excludeNamespaces: ['dev'],
    },
    { name: 'crb-teams', check: 'clusterAdminBinding', namespaces: ['team-*'] },
    { name: 'crb-all', check: 'clusterAdminBinding' },
  ]);
  const offender = pod(
    podSpec({ containers: [app({ image: 'busybox', securityContext: { privileged: true } })] }),
  );
  const pods: [namespace: string, rules: string[]][] = [
    ['team-a', ['priv-teams', 'reg-not-dev']],
    ['team-sandbox', ['reg-not-dev']],
    ['default', ['reg-not-dev']],
    ['dev', []],
  ];
  for (const [namespace, rules] of pods) {
    const decision = evaluate(requestFor('Pod', offender, { namespace }), ruleset);
    t.same(decision.rulesApplied, rules, `Pod in ${namespace}`);
    t.same([...new Set(decision.violations.map((v) => v.rule))], rules, `Pod in ${namespace}`);
    t.equal(decision.allowed, rules.length === 0);
  }

  const binding = (kind: string) => ({
    kind,
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'User', name: 'x' }],
  });
  // A cluster-scoped object has namespace '': "*" covers it, "team-*" does not.
  const crb = evaluate(requestFor('ClusterRoleBinding', binding('ClusterRoleBinding')), ruleset);
  t.same(crb.rulesApplied, ['crb-all'], 'ClusterRoleBinding');
  t.same(
    crb.violations.map((v) => v.rule),
    ['crb-all'],
  );
  const rb = evaluate(requestFor('RoleBinding', binding('RoleBinding'), { namespace: 'team-a' }), ruleset);
  t.same(rb.rulesApplied, ['crb-teams', 'crb-all'], 'RoleBinding in team-a');
});

t.test('actions: warn and audit leave the request allowed', async (t) => {
  const ruleset = ruleSet([
    { name: 'warn-priv', check: 'privileged', action: 'warn' },
    {
      name: 'audit-reg',
      check: 'trustedRegistries',
      action: 'audit',
      params: { registries: ['registry.k8s.io'] },
    },
  ]);
  const judge = (container: Record<string, unknown>) =>
    evaluate(requestFor('Pod', pod(podSpec({ containers: [container] }))), ruleset);

  const warned = judge(privilegedApp);
  t.equal(warned.allowed, true);
  t.equal(outcome(warned), 'warn');
  t.same(warnings(warned), ['container "app": securityContext.privileged must not be true [warn-priv]']);
  t.equal(denyMessage(warned), undefined);
  t.same(
    warned.violations.map((v) => [v.rule, v.check, v.action, formatFieldPath(v.path)]),
    [['warn-priv', 'privileged', 'warn', 'spec.containers[0].securityContext.privileged']],
  );

  const audited = judge(app({ image: 'busybox' }));
  t.equal(audited.allowed, true);
  t.equal(outcome(audited), 'audit');
  t.same(warnings(audited), []);
  t.same(
    audited.violations.map((v) => [v.rule, v.action]),
    [['audit-reg', 'audit']],
  );

  const both = judge(app({ image: 'busybox', securityContext: { privileged: true } }));
  t.equal(both.allowed, true);
  t.equal(outcome(both), 'warn', 'warn outranks audit');

  t.equal(outcome(judge(app())), 'allow', 'nothing violated (distractor)');

  const mixed = ruleSet([
    { name: 'no-privileged', check: 'privileged' },
    {
      name: 'warn-reg',
      check: 'trustedRegistries',
      action: 'warn',
      params: { registries: ['registry.k8s.io'] },
    },
  ]);
  const denied = evaluate(
    requestFor(
      'Pod',
      pod(podSpec({ containers: [app({ image: 'busybox', securityContext: { privileged: true } })] })),
    ),
    mixed,
  );
  t.equal(denied.allowed, false);
  t.equal(outcome(denied), 'deny');
  t.equal(denyMessage(denied), PRIVILEGED, 'the deny message cites only deny rules');
  t.same(warnings(denied), [
    'container "app": image "busybox" (docker.io/library/busybox) is not from a trusted registry [warn-reg]',
  ]);
});

t.test('dryRun requests are judged like any other', async (t) => {
  for (const object of [privilegedPod(), pod()]) {
    t.same(
      evaluate(requestFor('Pod', object, { dryRun: true }), RULES),
      evaluate(requestFor('Pod', object, { dryRun: false }), RULES),
    );
  }
  t.equal(evaluate(requestFor('Pod', privilegedPod(), { dryRun: true }), RULES).allowed, false);
});

t.test('UPDATE', async (t) => {
  const deployment = (containers: unknown[], labels: Record<string, string> = {}) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels },
    spec: { replicas: 1, template: { metadata: { labels: { app: 'web' } }, spec: podSpec({ containers }) } },
  });
  const update = (object: unknown, oldObject: unknown) =>
    evaluate(requestFor('Deployment', object, { operation: 'UPDATE', oldObject }), RULES);

  const relabelled = update(
    deployment([privilegedApp], { team: 'b' }),
    deployment([privilegedApp], { team: 'a' }),
  );
  t.same(
    relabelled,
    {
      allowed: true,
      violations: [],
      skipped: { kind: 'unchanged', detail: 'the update does not change what the rules judge' },
      rulesApplied: ['no-privileged', 'trusted'],
    },
    'a relabel of an already-admitted object is not re-judged',
  );
  const scaled = deployment([privilegedApp]);
  t.equal(
    update({ ...scaled, spec: { ...scaled.spec, replicas: 3 } }, scaled).skipped?.kind,
    'unchanged',
    'replicas',
  );

  const added = update(deployment([app(), { ...privilegedApp, name: 'b' }]), deployment([app()]));
  t.equal(added.allowed, false, 'an UPDATE that adds a privileged container is denied');
  t.same(texts(added), ['container "b": securityContext.privileged must not be true [no-privileged]']);
  t.same(
    added.violations.map((v) => formatFieldPath(v.path)),
    ['spec.template.spec.containers[1].securityContext.privileged'],
  );

  const flipped = update(deployment([privilegedApp]), deployment([app()]));
  t.same(texts(flipped), [PRIVILEGED], 'turning privileged on is judged');

  const reordered = update(
    deployment([privilegedApp, app({ name: 'b' })]),
    deployment([app({ name: 'b' }), privilegedApp]),
  );
  t.equal(reordered.skipped, undefined, 'a reorder changes the field paths, so it is judged');

  t.equal(
    update(deployment([privilegedApp]), 'garbage').allowed,
    false,
    'a malformed oldObject does not skip',
  );
  t.equal(
    evaluate(requestFor('Deployment', deployment([privilegedApp]), { operation: 'UPDATE' }), RULES).allowed,
    false,
    'an UPDATE without oldObject is judged',
  );
});

t.test('malformed objects fail closed', async (t) => {
  const rows: [name: string, request: AdmissionRequest, message: string][] = [
    [
      'containers not a list',
      requestFor('Pod', pod({ containers: 'app' })),
      'object is malformed: spec.containers must be a list, not a string',
    ],
    [
      'containers an object',
      requestFor('Pod', pod({ containers: { app: { image: TRUSTED } } })),
      'object is malformed: spec.containers must be a list, not an object',
    ],
    [
      'a container that is not an object',
      requestFor('Pod', pod({ containers: ['nginx'] })),
      'object is malformed: spec.containers[0] must be an object, not a string',
    ],
    [
      'image not a string',
      requestFor('Pod', pod({ containers: [{ name: 'app', image: 42 }] })),
      'object is malformed: spec.containers[0].image must be a string, not a number',
    ],
    [
      'object not an object',
      requestFor('Pod', 'pod'),
      'object is malformed: object must be an object, not a string',
    ],
    [
      'object a list',
      requestFor('Pod', [pod()]),
      'object is malformed: object must be an object, not a list',
    ],
    ['no object', requestFor('Pod', undefined), 'object is malformed: object is missing (must be an object)'],
    [
      'a Pod without spec',
      requestFor('Pod', { kind: 'Pod' }),
      'object is malformed: spec is missing (must be an object)',
    ],
    [
      'a Deployment whose template is null',
      requestFor('Deployment', { spec: { template: null } }),
      'object is malformed: spec.template must be an object, not null',
    ],
    [
      'a CronJob without a jobTemplate',
      requestFor('CronJob', { spec: { schedule: '* * * * *' } }),
      'object is malformed: spec.jobTemplate is missing (must be an object)',
    ],
  ];
  for (const [name, request, message] of rows) {
    const decision = evaluate(request, RULES);
    t.equal(decision.allowed, false, name);
    t.same(decision.violations, [], name);
    t.equal(denyMessage(decision), message, name);
    t.equal(outcome(decision), 'deny', name);
  }
  t.same(
    evaluate(requestOfKind('', 'ConfigMap', 'not an object'), RULES),
    { allowed: true, violations: [], rulesApplied: [] },
    'a kind no rule reads is not read at all (distractor)',
  );
});

t.test('the deny message cites every violated rule', async (t) => {
  const spec = podSpec({
    containers: [
      app({ image: 'busybox', securityContext: { privileged: true } }),
      app({ name: 'b', securityContext: { privileged: true } }),
    ],
  });
  const decision = evaluate(requestFor('Pod', pod(spec)), RULES);
  t.equal(
    denyMessage(decision),
    [
      'container "app": securityContext.privileged must not be true [no-privileged]',
      'container "b": securityContext.privileged must not be true [no-privileged]',
      'container "app": image "busybox" (docker.io/library/busybox) is not from a trusted registry [trusted]',
    ].join('; '),
  );
  t.same(
    decision.violations.map((v) => formatFieldPath(v.path)),
    [
      'spec.containers[0].securityContext.privileged',
      'spec.containers[1].securityContext.privileged',
      'spec.containers[0].image',
    ],
  );
  t.equal(
    denyMessage(evaluate(requestFor('Pod', privilegedPod()), RULES)),
    PRIVILEGED,
    'the example of issue 2',
  );
  t.equal(
    denyMessage(evaluate(requestFor('Pod', pod()), RULES)),
    undefined,
    'allowed: no message (distractor)',
  );
});

t.test('evaluate does not modify the request', async (t) => {
  const request = requestFor('Deployment', {
    spec: { template: { spec: { containers: [privilegedApp] } } },
  });
  const before = structuredClone(request);
  evaluate(request, oneRule('seccomp'));
  evaluate(request, RULES);
  t.same(request, before);
});
