// What a ValidatingWebhookConfiguration must send Portcullis for the `cel` rules of a RuleSet to
// judge anything: the union of their resourceRules, as webhook rules. `serve
// --webhook-configuration` keeps its own webhook's rules equal to this; `check` warns about what
// the shipped, static webhooks do not send.

import { celMatchConstraints } from '../checks/cel.js';
import type { CompiledRuleSet } from '../ruleset.js';

/** An admissionregistration.k8s.io/v1 RuleWithOperations. */
export interface WebhookRule {
  apiGroups: string[];
  apiVersions: string[];
  operations: string[];
  resources: string[];
  scope: 'Cluster' | 'Namespaced' | '*';
}

/** The resource rules of every `cel` rule, each once, in rule order. resourceNames narrow nothing here. */
export function celWebhookRules(ruleset: CompiledRuleSet): WebhookRule[] {
  const rules: WebhookRule[] = [];
  const seen = new Set<string>();
  for (const rule of ruleset.rules) {
    for (const resourceRule of celMatchConstraints(rule.compiled.params)?.resourceRules ?? []) {
      const { apiGroups, apiVersions, operations, resources } = resourceRule;
      // A list left out matches nothing (as in VAP): nothing to send.
      if (
        apiGroups === undefined ||
        apiVersions === undefined ||
        operations === undefined ||
        resources === undefined
      )
        continue;
      if ([apiGroups, apiVersions, operations, resources].some((list) => list.length === 0)) continue;
      const webhookRule: WebhookRule = {
        apiGroups,
        apiVersions,
        operations,
        resources,
        scope: resourceRule.scope ?? '*',
      };
      const key = JSON.stringify(webhookRule);
      if (seen.has(key)) continue;
      seen.add(key);
      rules.push(webhookRule);
    }
  }
  return rules;
}
