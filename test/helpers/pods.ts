// Pod-check test helpers: a pod spec inside any kind that carries one, and the two cross-cutting
// cases every pod check must pass (every template kind; an UPDATE whose only change is the field).

import type { Test } from 'tap';
import { evaluate, type CompiledRuleSet } from '../../src/core/index.js';
import { expectDecision } from './decisions.js';
import { POD_SPEC_PATHS, pod, requestFor } from './requests.js';

/** An object of `kind` whose pod spec (at the kind's own path) is `spec`. */
export function objectOf(kind: string, spec: Record<string, unknown>): Record<string, unknown> {
  const specPath = POD_SPEC_PATHS.find(([k]) => k === kind)?.[1];
  if (specPath === undefined) throw new Error(`test helper: ${kind} carries no pod spec`);
  return {
    apiVersion: 'v1',
    kind,
    metadata: { name: 'x', namespace: 'default' },
    ...specPath.reduceRight<Record<string, unknown>>((inner, key) => ({ [key]: inner }), spec),
  };
}

/**
 * The offending spec is denied in every kind with the same messages, the field paths under that
 * kind's pod spec; the clean spec is allowed in every kind. `messages` and `fields` are written for a
 * Pod (`spec.…`).
 */
export function deniedInEveryKind(
  t: Test,
  ruleset: CompiledRuleSet,
  offending: Record<string, unknown>,
  clean: Record<string, unknown>,
  expected: { messages: readonly string[]; fields: readonly string[] },
): void {
  for (const [kind, specPath] of POD_SPEC_PATHS) {
    const prefix = specPath.join('.');
    t.test(kind, async (t) => {
      expectDecision(t, evaluate(requestFor(kind, objectOf(kind, offending)), ruleset), {
        messages: expected.messages,
        fields: expected.fields.map((f) => f.replace(/^spec/, prefix)),
      });
      expectDecision(t, evaluate(requestFor(kind, objectOf(kind, clean)), ruleset), { messages: [] });
    });
  }
}

/**
 * An UPDATE whose only change is the offending field is judged (the "unchanged" skip sees it), and
 * an UPDATE that changes nothing the rules judge (a label) is skipped even on an offending pod.
 */
export function updateSeesTheField(
  t: Test,
  ruleset: CompiledRuleSet,
  offending: Record<string, unknown>,
  clean: Record<string, unknown>,
  messages: readonly string[],
): void {
  const changed = evaluate(
    requestFor('Pod', pod(offending), { operation: 'UPDATE', oldObject: pod(clean) }),
    ruleset,
  );
  expectDecision(t, changed, { messages });
  const relabelled = { ...pod(offending), metadata: { name: 'p', namespace: 'default', labels: { a: 'b' } } };
  const unchanged = evaluate(
    requestFor('Pod', relabelled, { operation: 'UPDATE', oldObject: pod(offending) }),
    ruleset,
  );
  t.equal(unchanged.allowed, true, 'a relabel of an offending pod is not judged again');
  t.equal(unchanged.skipped?.kind, 'unchanged');
}
