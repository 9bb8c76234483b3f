// What every pod check's table test does besides its own rows: run the rows (a Pod, one rule, the
// exact messages), the same pod in every kind that carries a pod spec (and its template's
// annotations), the UPDATE whose only change is the checked field, and the check at one version.

import type { Test } from 'tap';
import type { CheckDefinition, CompiledCheck } from '../../src/core/check.js';
import { CHECKS, evaluate, type CompiledRuleSet, type KubeVersion } from '../../src/core/index.js';
import { expectDecision } from './decisions.js';
import { pod, POD_SPEC_PATHS, requestFor } from './requests.js';
import { oneRule } from './rules.js';

/**
 * An object of `kind` whose pod spec is `spec`, with `annotations` on the pod's own metadata (a
 * Pod's, or its template's): the shape the Kubernetes API defines for each kind.
 */
export function objectOfKind(
  kind: string,
  spec: Record<string, unknown>,
  annotations?: Record<string, string>,
): Record<string, unknown> {
  const specPath = POD_SPEC_PATHS.find(([k]) => k === kind)?.[1];
  if (specPath === undefined) throw new Error(`test helper: ${kind} carries no pod spec`);
  const metadata = { name: 'x', namespace: 'default' };
  if (kind === 'Pod') {
    return {
      apiVersion: 'v1',
      kind,
      metadata: annotations === undefined ? metadata : { ...metadata, annotations },
      spec,
    };
  }
  const podPart: Record<string, unknown> = {
    ...(annotations === undefined ? {} : { metadata: { annotations } }),
    spec,
  };
  const wrapped = specPath
    .slice(0, -1)
    .reduceRight<Record<string, unknown>>((inner, key) => ({ [key]: inner }), podPart);
  return { apiVersion: 'v1', kind, metadata, ...wrapped };
}

/** A Pod's field path (`spec.…`, `metadata.annotations…`) as it is inside an object of `kind`. */
function fieldInKind(kind: string, podField: string): string {
  const specPath = POD_SPEC_PATHS.find(([k]) => k === kind)?.[1] ?? ['spec'];
  const parent = specPath.slice(0, -1);
  if (podField.startsWith('spec')) return specPath.join('.') + podField.slice('spec'.length);
  if (podField.startsWith('metadata'))
    return [...parent, 'metadata'].join('.') + podField.slice('metadata'.length);
  return podField;
}

export interface KindRow {
  spec: Record<string, unknown>;
  annotations?: Record<string, string>;
  messages: readonly string[];
  /** As in a Pod (`spec.containers[0]…`): rewritten to where each kind keeps its pod spec. */
  fields: readonly string[];
}

/** The same pod, as a Pod and as every template kind: the same messages, each at its kind's path. */
export function expectEveryKind(t: Test, ruleset: CompiledRuleSet, row: KindRow): void {
  for (const [kind] of POD_SPEC_PATHS) {
    t.test(kind, async (t) => {
      const decision = evaluate(requestFor(kind, objectOfKind(kind, row.spec, row.annotations)), ruleset);
      expectDecision(t, decision, {
        messages: row.messages,
        fields: row.fields.map((field) => fieldInKind(kind, field)),
      });
    });
  }
}

export interface UpdateRow {
  /** The pod spec before: compliant. */
  before: Record<string, unknown>;
  /** The pod spec after: only the checked field changed. */
  after: Record<string, unknown>;
  messages: readonly string[];
}

/**
 * An UPDATE whose only change is the checked field is judged (the unchanged-UPDATE skip compares
 * the whole spec), and the same UPDATE repeated, with nothing changed, is skipped.
 */
export function expectUpdateJudged(t: Test, ruleset: CompiledRuleSet, row: UpdateRow): void {
  const changed = evaluate(
    requestFor('Pod', pod(row.after), { operation: 'UPDATE', oldObject: pod(row.before) }),
    ruleset,
  );
  t.equal(changed.skipped, undefined, 'the UPDATE that changes the field is judged');
  expectDecision(t, changed, { messages: row.messages });
  const unchanged = evaluate(
    requestFor('Pod', pod(row.after), { operation: 'UPDATE', oldObject: pod(row.after) }),
    ruleset,
  );
  t.equal(unchanged.skipped?.kind, 'unchanged', 'the UPDATE that changes nothing is skipped');
  t.equal(unchanged.allowed, true);
}

/** Asserts the object fails closed at `path` with `message` (a wrong type in a field the check reads). */
export function expectMalformed(
  t: Test,
  ruleset: CompiledRuleSet,
  spec: Record<string, unknown>,
  expected: { path: readonly (string | number)[]; message: string },
  annotations?: Record<string, string>,
): void {
  const decision = evaluate(requestFor('Pod', objectOfKind('Pod', spec, annotations)), ruleset);
  t.equal(decision.allowed, false, 'denied');
  t.same(decision.malformed, expected);
}

/** A row of a pod check's table: the pod spec in, the exact messages out. */
export interface PodCase {
  name: string;
  spec: Record<string, unknown>;
  /** On the Pod's metadata. */
  annotations?: Record<string, string>;
  /** This row's params for the rule; the table's otherwise. */
  params?: Record<string, unknown>;
  messages: readonly string[];
  /** As in a Pod (`spec.containers[0]…`), one a message, where the row pins them. */
  fields?: readonly string[];
}

/**
 * One subtest a row: the row's spec as a Pod CREATE, judged by one rule `r` of `check` (with the
 * row's params, else `params`); the decision carries exactly the row's messages, at its fields.
 */
export function expectPodCases(
  t: Test,
  check: string,
  cases: readonly PodCase[],
  params: Record<string, unknown> = {},
): void {
  const shared = oneRule(check, params);
  for (const row of cases) {
    t.test(row.name, async (t) => {
      const ruleset = row.params === undefined ? shared : oneRule(check, row.params);
      const object =
        row.annotations === undefined ? pod(row.spec) : objectOfKind('Pod', row.spec, row.annotations);
      expectDecision(t, evaluate(requestFor('Pod', object), ruleset), row);
    });
  }
}

/** The registered check `id` (throws if there is none: a test of it cannot mean anything then). */
export function registeredCheck(id: string): CheckDefinition {
  const definition = CHECKS.get(id);
  if (definition === undefined) throw new Error(`${id} is not registered`);
  return definition;
}

/** What check `id`, as it behaves at `version` with `params`, finds in a Pod CREATE of `spec`. */
export function runAtVersion(
  id: string,
  version: KubeVersion,
  spec: Record<string, unknown>,
  params: Record<string, unknown> = {},
): ReturnType<CompiledCheck['run']> {
  const compiled = registeredCheck(id).compileParams(params, version);
  if (!compiled.ok) throw new Error(`${id} params do not compile: ${JSON.stringify(compiled.errors)}`);
  return compiled.compiled.run({ request: requestFor('Pod', pod(spec)), context: {} });
}

/**
 * Rows for a check of one securityContext field that pods and containers both set (runAsUser,
 * runAsNonRoot): a container with `field` set to `value` (absent when undefined), and a pod spec
 * with it set to `podValue` at pod level, the given container lists and any other spec fields.
 */
export function securityContextField(field: string): {
  container: (name: string, value?: unknown) => Record<string, unknown>;
  spec: (
    podValue: unknown,
    lists: Record<string, unknown[]>,
    extra?: Record<string, unknown>,
  ) => Record<string, unknown>;
} {
  return {
    container: (name, value) => ({
      name,
      image: 'registry.k8s.io/pause:3.10',
      ...(value === undefined ? {} : { securityContext: { [field]: value } }),
    }),
    spec: (podValue, lists, extra = {}) => ({
      ...(podValue === undefined ? {} : { securityContext: { [field]: podValue } }),
      ...lists,
      ...extra,
    }),
  };
}
