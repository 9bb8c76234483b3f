// What the shipped webhook configurations ask the API server to evaluate before calling Portcullis,
// derived from the checks themselves so the conditions and the code they stand for cannot drift.
// test/manifests/webhooks.test.ts holds the manifests to these strings.

import type { CheckDefinition } from './check.js';
import { CHECKS } from './checks/index.js';
import { podSpecCondition } from './pod.js';

/**
 * The mutating webhook's matchCondition: true when any check's mutation could patch this request.
 * It holds for every RuleSet, since it only says when a patch is possible at all; a mutation
 * without a `callWhen` makes it always true.
 */
export function mutationCondition(checks: ReadonlyMap<string, CheckDefinition> = CHECKS): string {
  const mutating = [...checks.values()].flatMap((c) => (c.mutation === undefined ? [] : [c.mutation]));
  if (mutating.length === 0) return 'false';
  const conditions: string[] = [];
  for (const { callWhen } of mutating) {
    if (callWhen === undefined) return 'true';
    conditions.push(podSpecCondition(callWhen));
  }
  return conditions.map((c) => `(${c})`).join(' || ');
}
