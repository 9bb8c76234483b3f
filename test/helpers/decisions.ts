import type { Test } from 'tap';
import { formatFieldPath, type Decision } from '../../src/core/index.js';

/** What a check's table row expects: each violation as `message [rule]`, and optionally its field path. */
export interface Expected {
  messages: readonly string[];
  fields?: readonly string[] | undefined;
}

/** Asserts a well-formed object's decision: exactly these violations, allowed when there are none. */
export function expectDecision(t: Test, decision: Decision, expected: Expected): void {
  t.equal(decision.malformed, undefined, 'the object is well formed');
  t.same(
    decision.violations.map((v) => `${v.message} [${v.rule}]`),
    expected.messages,
  );
  t.equal(decision.allowed, expected.messages.length === 0);
  if (expected.fields !== undefined) {
    t.same(
      decision.violations.map((v) => formatFieldPath(v.path)),
      expected.fields,
    );
  }
}
