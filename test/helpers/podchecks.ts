// Rows every pod check's table needs besides its own: the same pod in every kind that carries a pod
// spec (and its template's annotations), and the UPDATE whose only change is the checked field.

import type { Test } from 'tap';
import { evaluate, type CompiledRuleSet } from '../../src/core/index.js';
import { expectDecision } from './decisions.js';
import { pod, POD_SPEC_PATHS, requestFor } from './requests.js';

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
