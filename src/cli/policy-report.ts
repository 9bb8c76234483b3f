// `scan -o policyreport`: the results as wgpolicyk8s.io/v1alpha2 PolicyReports, one per namespace,
// and a ClusterPolicyReport for cluster-scoped objects: the format Kyverno, Kubewarden and
// trivy-operator write and Policy Reporter displays. Printed as YAML documents for the user to
// apply or pipe; Portcullis never writes them into the cluster.
//
// One result per object and rule: `policy` is the RuleSet rule, `rule` its check. A rule that
// judged the object and found nothing passes; a deny or audit rule it breaks fails (audit is how a
// rule is tried before it is enforced: the object does not comply); a warn rule it breaks warns;
// an object that cannot be read is an error; an exempt object is skipped by every rule that would
// have judged it.

import { stringify } from 'yaml';
import {
  denyMessage,
  formatFieldPath,
  rulesFor,
  type CompiledRuleSet,
  type Violation,
} from '../core/index.js';
import { MALFORMED_RULE } from './report.js';
import type { ScanResult } from './scan.js';

const API_VERSION = 'wgpolicyk8s.io/v1alpha2';
const REPORT_NAME = 'portcullis-scan';
const SOURCE = 'portcullis';

type Status = 'pass' | 'fail' | 'warn' | 'error' | 'skip';

interface ReportResult {
  source: string;
  policy: string;
  rule: string;
  result: Status;
  scored: boolean;
  message?: string;
  severity?: 'high' | 'medium' | 'low';
  timestamp: { seconds: number; nanos: number };
  resources: { apiVersion: string; kind: string; name: string; namespace?: string; uid?: string }[];
  properties?: Record<string, string>;
}

const SEVERITY = { deny: 'high', warn: 'medium', audit: 'low' } as const;

export function formatPolicyReports(
  results: readonly ScanResult[],
  ruleset: CompiledRuleSet,
  now: Date,
): string {
  const timestamp = { seconds: Math.floor(now.getTime() / 1000), nanos: 0 };
  const byNamespace = new Map<string, ReportResult[]>();
  for (const r of results) {
    const key = r.namespace ?? '';
    const list = byNamespace.get(key) ?? [];
    list.push(...resultsOf(r, ruleset, timestamp));
    byNamespace.set(key, list);
  }
  const reports = [...byNamespace]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([namespace, list]) => ({
      apiVersion: API_VERSION,
      kind: namespace === '' ? 'ClusterPolicyReport' : 'PolicyReport',
      metadata: {
        name: REPORT_NAME,
        ...(namespace === '' ? {} : { namespace }),
        labels: { 'app.kubernetes.io/managed-by': SOURCE },
      },
      summary: summarise(list),
      results: list,
    }));
  // Cluster-scoped first, as `kubectl get` lists them.
  reports.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'ClusterPolicyReport' ? -1 : 1));
  return reports.map((report) => `---\n${stringify(report, { lineWidth: 0 })}`).join('');
}

function summarise(results: readonly ReportResult[]): Record<Status, number> {
  const summary: Record<Status, number> = { pass: 0, fail: 0, warn: 0, error: 0, skip: 0 };
  for (const r of results) summary[r.result]++;
  return summary;
}

function resultsOf(
  r: ScanResult,
  ruleset: CompiledRuleSet,
  timestamp: ReportResult['timestamp'],
): ReportResult[] {
  const resource = {
    apiVersion: r.apiVersion,
    kind: r.kind,
    name: r.name ?? '',
    ...(r.namespace === undefined ? {} : { namespace: r.namespace }),
    ...(r.uid === undefined ? {} : { uid: r.uid }),
  };
  const base = { source: SOURCE, scored: true, timestamp, resources: [resource] };
  const { decision } = r;
  if (decision.skipped !== undefined) {
    const reason = decision.skipped.detail;
    return rulesFor(r.request, ruleset).map((rule) => ({
      ...base,
      policy: rule.name,
      rule: rule.check,
      result: 'skip',
      message: reason,
    }));
  }
  if (decision.malformed !== undefined) {
    return [
      {
        ...base,
        policy: MALFORMED_RULE,
        rule: MALFORMED_RULE,
        result: 'error',
        message: denyMessage(decision) ?? '',
        properties: { field: formatFieldPath(decision.malformed.path) },
      },
    ];
  }
  const checkOf = new Map(ruleset.rules.map((rule) => [rule.name, rule.check]));
  const broken = new Map<string, Violation[]>();
  for (const v of decision.violations) broken.set(v.rule, [...(broken.get(v.rule) ?? []), v]);
  return decision.rulesApplied.map((name): ReportResult => {
    const violations = broken.get(name);
    const rule = checkOf.get(name) ?? '';
    const first = violations?.[0];
    if (violations === undefined || first === undefined)
      return { ...base, policy: name, rule, result: 'pass' };
    return {
      ...base,
      policy: name,
      rule,
      result: first.action === 'warn' ? 'warn' : 'fail',
      severity: SEVERITY[first.action],
      message: violations.map((v) => v.message).join('; '),
      properties: { action: first.action, fields: violations.map((v) => formatFieldPath(v.path)).join(', ') },
    };
  });
}
