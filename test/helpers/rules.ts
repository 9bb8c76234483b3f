import { CHECKS, compileRuleSet, type CompiledRuleSet } from '../../src/core/index.js';

/** A RuleSet with these rules and exemptions, as the security team would write it; throws if it does not compile. */
export function ruleSet(rules: unknown[], exemptions: Record<string, unknown> = {}): CompiledRuleSet {
  const result = compileRuleSet({ apiVersion: 'portcullis.io/v1', kind: 'RuleSet', exemptions, rules });
  if (!result.ok) throw new Error(`test RuleSet does not compile: ${JSON.stringify(result.errors)}`);
  return result.ruleset;
}

/** A RuleSet with one rule, named `r`. */
export function oneRule(
  check: string,
  params: Record<string, unknown> = {},
  rule: Record<string, unknown> = {},
  exemptions: Record<string, unknown> = {},
): CompiledRuleSet {
  return ruleSet([{ name: 'r', check, params, ...rule }], exemptions);
}

/** The tail of the "unknown check" message: every check of the registry, in its order. */
export const KNOWN_CHECKS = `known checks: ${[...CHECKS.keys()].join(', ')}`;
