// The engine around the checks: a check that throws fails its own rule closed, a check that reads a
// raw field of the wrong type fails the request closed, versions pick behaviour, and a check's own
// mutation is what /mutate applies. Checks here are made for the test with defineCheck, so the
// behaviour is the engine's and not any shipped check's.

import t from 'tap';
import {
  compileRuleSet,
  defineCheck,
  evaluate,
  mutate,
  POD_TARGET,
  type CheckDefinition,
  type CompiledRuleSet,
} from '../../src/core/index.js';
import type { PodView } from '../../src/core/pod.js';
import { optBoolean } from '../../src/core/read.js';
import { pod, podSpec, requestFor } from '../helpers/requests.js';

const throwing = defineCheck<Record<string, never>, unknown>({
  id: 'throwing',
  summary: 'always throws',
  target: POD_TARGET,
  paramsSchema: { type: 'object' },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: () => () => {
        throw new Error('boom');
      },
    },
  ],
});

const hostUsers = defineCheck<Record<string, never>, PodView>({
  id: 'hostUsers',
  summary: 'reads spec.hostUsers from the raw spec, in two versions',
  target: POD_TARGET,
  paramsSchema: { type: 'object' },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: () => (pod) =>
        optBoolean(pod.spec, 'hostUsers', pod.path) === true
          ? [{ path: [...pod.path, 'hostUsers'], message: 'v1.0 says no' }]
          : [],
    },
    {
      minimumVersion: 'v1.30',
      compile: () => (pod) =>
        optBoolean(pod.spec, 'hostUsers', pod.path) === true
          ? [{ path: [...pod.path, 'hostUsers'], message: 'v1.30 says no' }]
          : [],
    },
  ],
  mutation: {
    enabled: () => true,
    patch: (pod) =>
      pod.spec['hostUsers'] === undefined ? [{ op: 'add', path: '/spec/hostUsers', value: false }] : [],
  },
});

const REGISTRY: ReadonlyMap<string, CheckDefinition> = new Map([throwing, hostUsers].map((c) => [c.id, c]));

function rules(...list: Record<string, unknown>[]): CompiledRuleSet {
  const result = compileRuleSet({ apiVersion: 'portcullis.io/v1', kind: 'RuleSet', rules: list }, REGISTRY);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.ruleset;
}

t.test('a check that throws denies with the reason, and the other rules still run', async (t) => {
  const ruleset = rules(
    { name: 'broken', check: 'throwing', action: 'audit' },
    { name: 'users', check: 'hostUsers', action: 'warn' },
  );
  const decision = evaluate(requestFor('Pod', pod(podSpec({ hostUsers: true }))), ruleset);
  t.equal(decision.allowed, false, 'fails closed even though the rule only audits');
  t.same(
    decision.violations.map((v) => [v.rule, v.action, v.message, v.error ?? false]),
    [
      ['broken', 'deny', 'check "throwing" failed: boom', true],
      ['users', 'warn', 'v1.30 says no', false],
    ],
  );
});

t.test('a raw field read by a check with the wrong type fails the request closed', async (t) => {
  const decision = evaluate(
    requestFor('Pod', pod(podSpec({ hostUsers: 'yes' }))),
    rules({ name: 'users', check: 'hostUsers' }),
  );
  t.equal(decision.allowed, false);
  t.same(decision.malformed, { path: ['spec', 'hostUsers'], message: 'must be a boolean, not a string' });
});

t.test('versions: the newest behaviour not above the version asked for', async (t) => {
  const latest = hostUsers.compileParams({});
  const old = hostUsers.compileParams({}, 'v1.29');
  const exact = hostUsers.compileParams({}, 'v1.30');
  t.same(hostUsers.versions, ['v1.0', 'v1.30']);
  t.equal(latest.ok && latest.compiled.version, 'v1.30');
  t.equal(old.ok && old.compiled.version, 'v1.0');
  t.equal(exact.ok && exact.compiled.version, 'v1.30', 'a minimum version is inclusive');
  t.throws(
    () =>
      defineCheck({
        id: 'late',
        summary: '',
        target: POD_TARGET,
        paramsSchema: { type: 'object' },
        versions: [{ minimumVersion: 'v1.2', compile: () => () => [] }],
      }),
    /first version must be v1.0/,
  );
});

t.test("a check's own mutation is what /mutate applies, and only where the target allows it", async (t) => {
  const ruleset = rules({ name: 'users', check: 'hostUsers' });
  const create = requestFor('Pod', pod(podSpec()));
  t.same(mutate(create, ruleset), {
    patch: [{ op: 'add', path: '/spec/hostUsers', value: false }],
    rules: ['users'],
  });
  const alreadySet = requestFor('Pod', pod(podSpec({ hostUsers: true })));
  t.same(mutate(alreadySet, ruleset), { patch: [], rules: [] }, 'nothing to add');
  const update = requestFor('Pod', pod(podSpec()), {
    operation: 'UPDATE',
    oldObject: pod(podSpec({ a: 1 })),
  });
  t.same(mutate(update, ruleset), { patch: [], rules: [] }, "a running pod's spec is not patched");
});

t.test(
  'the unchanged-UPDATE skip compares the whole pod spec, not only the fields of the view',
  async (t) => {
    const ruleset = rules({ name: 'users', check: 'hostUsers' });
    const before = pod(podSpec());
    const relabelled = { ...before, metadata: { name: 'p', namespace: 'default', labels: { a: 'b' } } };
    const skipped = evaluate(
      requestFor('Pod', relabelled, { operation: 'UPDATE', oldObject: before }),
      ruleset,
    );
    t.equal(skipped.skipped?.kind, 'unchanged');
    const changed = evaluate(
      requestFor('Pod', pod(podSpec({ hostUsers: true })), { operation: 'UPDATE', oldObject: before }),
      ruleset,
    );
    t.equal(changed.skipped, undefined, 'a field no view names (hostUsers) still counts as a change');
    t.equal(changed.allowed, false);
  },
);
