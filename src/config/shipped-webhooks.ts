// What the shipped ValidatingWebhookConfiguration (manifests/base/50-…) sends Portcullis by its
// static webhooks, for `check` to say which `cel` rules would judge nothing without
// `serve --webhook-configuration` keeping the custom.portcullis.io webhook in step.
// test/cli/check-cel.test.ts holds this list to the manifest's workloads.portcullis.io (whose twin
// in Portcullis' own namespace, workloads-own-namespace.portcullis.io, sends the same there). The
// rules ConfigMap's webhook is left out: it sends one ConfigMap by name, not ConfigMaps.

import { celWebhookRules, type CompiledRuleSet, type WebhookRule } from '../core/index.js';

export const SHIPPED_STATIC_WEBHOOK_RULES: readonly Omit<WebhookRule, 'scope'>[] = [
  {
    apiGroups: [''],
    apiVersions: ['v1'],
    operations: ['CREATE', 'UPDATE'],
    resources: ['pods', 'podtemplates', 'replicationcontrollers'],
  },
  { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/ephemeralcontainers'] },
  {
    apiGroups: ['apps'],
    apiVersions: ['v1'],
    operations: ['CREATE', 'UPDATE'],
    resources: ['deployments', 'daemonsets', 'statefulsets', 'replicasets'],
  },
  {
    apiGroups: ['batch'],
    apiVersions: ['v1'],
    operations: ['CREATE', 'UPDATE'],
    resources: ['jobs', 'cronjobs'],
  },
  {
    apiGroups: [''],
    apiVersions: ['v1'],
    operations: ['CONNECT'],
    resources: ['pods/exec', 'pods/attach', 'pods/portforward'],
  },
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    apiVersions: ['v1'],
    operations: ['CREATE', 'UPDATE'],
    resources: ['rolebindings', 'clusterrolebindings', 'roles', 'clusterroles'],
  },
];

const covers = (list: readonly string[], value: string): boolean =>
  list.includes(value) || list.includes('*');

/** One warning per `cel` rule resource the static webhooks do not send, for every request it names. */
export function unsentByShippedWebhooks(ruleset: CompiledRuleSet): string[] {
  const warnings: string[] = [];
  for (const rule of ruleset.rules) {
    if (rule.check !== 'cel') continue;
    const single: CompiledRuleSet = { ...ruleset, rules: [rule] };
    const unsent = new Set<string>();
    for (const wanted of celWebhookRules(single)) {
      for (const group of wanted.apiGroups)
        for (const version of wanted.apiVersions)
          for (const resource of wanted.resources)
            for (const operation of wanted.operations) {
              const sent = SHIPPED_STATIC_WEBHOOK_RULES.some(
                (r) =>
                  covers(r.apiGroups, group) &&
                  covers(r.apiVersions, version) &&
                  covers(r.resources, resource) &&
                  covers(r.operations, operation),
              );
              if (!sent) unsent.add(`${operation} ${group === '' ? '' : `${group}/`}${resource}`);
            }
    }
    if (unsent.size > 0) {
      warnings.push(
        `rule "${rule.name}" judges ${[...unsent].join(', ')}, which the shipped webhook configuration sends only while ` +
          '`serve --webhook-configuration` keeps its custom.portcullis.io webhook in step with the RuleSet',
      );
    }
  }
  return warnings;
}
