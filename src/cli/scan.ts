// `portcullis scan`: what already runs, judged as the webhook would judge its creation. Lists every
// object of the kinds the rules judge through the API server (paged), judges each one through the
// path `check` uses, and prints the table, JSON or SARIF of `check`, or PolicyReports (printed, never
// written to the cluster). A kind the credentials may not list is reported with the API server's
// reason and the scan goes on; a list whose continue token expires is started over once (noted on
// stderr, nothing judged twice). Exit 0: nothing denied; 1: something denied; 2: an invalid RuleSet,
// unusable kubeconfig, or a kind that could not be listed (the scan saw less than asked).

import { Command, Option } from 'commander';
import type { KubeConfig } from '@kubernetes/client-node';
import { kindsJudgedBy, resourceLabel, type ApiResource } from '../admission/kinds.js';
import { createRequestFor } from '../admission/review.js';
import { DEFAULT_PAGE_SIZE, listObjects, listPath, type ListRestart } from '../config/cluster-objects.js';
import { DEFAULT_RULES_PATH, loadRuleSetFile } from '../config/ruleset-source.js';
import {
  denyMessage,
  isObject,
  outcome,
  type AdmissionRequest,
  type CompiledRuleSet,
} from '../core/index.js';
import { judgeAsAdmitted } from './judge.js';
import { formatPolicyReports } from './policy-report.js';
import { formatColumns, formatJson, formatSarif, MALFORMED_RULE, type CheckResult } from './report.js';

export type ScanFormat = 'table' | 'json' | 'sarif' | 'policyreport';

export interface ScanOptions {
  kubeconfig?: string;
  rules: string;
  namespace?: string;
  allNamespaces?: boolean;
  output: ScanFormat;
  chunkSize: number;
}

export interface ScanRun {
  exitCode: 0 | 1 | 2;
  output: string;
  errors: string[];
  /** What the user should know but that changes no verdict (a list started over). */
  notices: string[];
}

/** A judged object, with what a PolicyReport needs besides. */
export interface ScanResult extends CheckResult {
  uid: string | undefined;
  /** The CREATE it was judged as. */
  request: AdmissionRequest;
}

export function scanCommand(setExitCode: (code: number) => void): Command {
  return new Command('scan')
    .description(
      'Judge what already runs in the cluster with the RuleSet, as the webhook would judge its creation',
    )
    .option(
      '--kubeconfig <file>',
      'kubeconfig (default: in-cluster credentials, then $KUBECONFIG or ~/.kube/config)',
    )
    .option('--rules <file>', 'RuleSet file (YAML or JSON)', DEFAULT_RULES_PATH)
    .option('-n, --namespace <name>', "namespace to scan (default: the kubeconfig context's, else default)")
    .option('-A, --all-namespaces', 'scan every namespace, and the cluster-scoped kinds')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'json', 'sarif', 'policyreport'])
        .default('table'),
    )
    .addOption(
      new Option('--chunk-size <n>', 'objects per page of a list (limit/continue)')
        .default(DEFAULT_PAGE_SIZE)
        .argParser((v) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 1) throw new Error('--chunk-size must be a positive integer');
          return n;
        }),
    )
    .addHelpText(
      'after',
      '\nExit status: 0 nothing denied, 1 something denied, 2 invalid RuleSet, unusable kubeconfig, or a kind\n' +
        'that could not be listed. -o policyreport prints wgpolicyk8s.io/v1alpha2 PolicyReports (one per\n' +
        'namespace) and a ClusterPolicyReport; nothing is written to the cluster.',
    )
    .action(async (options: ScanOptions) => {
      if (options.namespace !== undefined && options.allNamespaces === true) {
        process.stderr.write('portcullis: -n and -A exclude each other\n');
        setExitCode(2);
        return;
      }
      const { loadKubeConfig } = await import('../config/rules-configmap-watch.js');
      let kubeConfig: KubeConfig;
      try {
        kubeConfig = loadKubeConfig(options.kubeconfig);
      } catch (err) {
        process.stderr.write(`portcullis: kubeconfig: ${err instanceof Error ? err.message : String(err)}\n`);
        setExitCode(2);
        return;
      }
      const run = await runScan(options, kubeConfig, new Date());
      process.stdout.write(run.output);
      process.stderr.write(run.notices.map((n) => `portcullis: note: ${n}\n`).join(''));
      if (run.errors.length > 0) process.stderr.write(run.errors.map((e) => `portcullis: ${e}\n`).join(''));
      setExitCode(run.exitCode);
    });
}

export async function runScan(options: ScanOptions, kubeConfig: KubeConfig, now: Date): Promise<ScanRun> {
  const load = await loadRuleSetFile(options.rules);
  if (!load.ok) return { exitCode: 2, output: '', errors: load.errors, notices: [] };
  const ruleset = load.loaded.ruleset;

  const namespace =
    options.allNamespaces === true
      ? undefined
      : (options.namespace ?? contextNamespace(kubeConfig) ?? 'default');
  // Cluster-scoped objects are in no namespace: a namespace's scan leaves them out, as it should.
  const resources = kindsJudgedBy(ruleset).filter((r) => r.namespaced || namespace === undefined);
  const scope = namespace === undefined ? 'in all namespaces' : `in namespace "${namespace}"`;

  const results: ScanResult[] = [];
  const errors: string[] = [];
  const notices: string[] = [];
  for (const resource of resources) {
    let restart: ListRestart | undefined;
    let alreadyListed = 0;
    for await (const page of listObjects(kubeConfig, resource, namespace, options.chunkSize)) {
      if (!page.ok) {
        errors.push(`cannot list ${resourceLabel(resource)} ${scope}: ${page.message}`);
        break;
      }
      restart ??= page.restart;
      alreadyListed += page.alreadyListed;
      for (const object of page.items) results.push(judgeListed(object, resource, ruleset, now));
    }
    if (restart !== undefined)
      notices.push(restartNotice(resourceLabel(resource), scope, restart, alreadyListed));
  }

  const output =
    options.output === 'json'
      ? formatJson({ results, errors: [], showMutations: false })
      : options.output === 'sarif'
        ? formatSarif({ results, errors: [], showMutations: false }, ruleset)
        : options.output === 'policyreport'
          ? formatPolicyReports(results, ruleset, now)
          : formatScanTable(results, errors.length);
  const exitCode = errors.length > 0 ? 2 : results.some((r) => !r.decision.allowed) ? 1 : 0;
  return { exitCode, output, errors, notices };
}

/**
 * `the continue token of the list of pods in all namespaces expired after 2 pages (410 Gone, reason
 * Expired): listed again from the start; 1000 objects already judged from the first pages left out`.
 */
export function restartNotice(
  kind: string,
  scope: string,
  restart: ListRestart,
  alreadyListed: number,
): string {
  const pages = `${restart.pagesBefore} page${restart.pagesBefore === 1 ? '' : 's'}`;
  const objects = `${alreadyListed} object${alreadyListed === 1 ? '' : 's'}`;
  return (
    `the continue token of the list of ${kind} ${scope} expired after ${pages} (410 Gone, reason Expired): ` +
    `listed again from the start; ${objects} already judged from the first pages left out`
  );
}

function contextNamespace(kubeConfig: KubeConfig): string | undefined {
  const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
  return context?.namespace === undefined || context.namespace === '' ? undefined : context.namespace;
}

/** One listed object judged as the webhook would judge its creation. */
export function judgeListed(
  object: Record<string, unknown> & { apiVersion: string; kind: string },
  resource: ApiResource,
  ruleset: CompiledRuleSet,
  now: Date,
): ScanResult {
  const metadata = isObject(object['metadata']) ? object['metadata'] : {};
  const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const namespace = resource.namespaced ? text(metadata['namespace']) : undefined;
  const name = text(metadata['name']);
  // The request the API server would send to create it, as `check` builds one from a manifest.
  const request = createRequestFor(object, namespace ?? '');
  const { decision, mutation } = judgeAsAdmitted(request, ruleset, { now });
  const path = `${listPath(resource, namespace)}/${encodeURIComponent(name ?? '')}`.slice(1);
  return {
    source: path,
    file: path,
    // An object from the API server has no file lines; its field paths say where.
    line: 1,
    lineOf: () => 1,
    apiVersion: object.apiVersion,
    kind: object.kind,
    namespace,
    name,
    decision,
    mutation,
    uid: text(metadata['uid']),
    request,
  };
}

/** The table: one row per violation; exempt objects summed up per namespace, not listed. */
function formatScanTable(results: readonly ScanResult[], failedKinds: number): string {
  const rows: string[][] = [];
  const exempt = new Map<string, { objects: number; reason: string }>();
  const counts = { denied: 0, warned: 0, audited: 0, allowed: 0, skipped: 0 };
  for (const r of results) {
    const o = outcome(r.decision);
    if (o === 'deny') counts.denied++;
    else if (o === 'warn') counts.warned++;
    else if (o === 'audit') counts.audited++;
    else if (o === 'skip') counts.skipped++;
    else counts.allowed++;
    const object = `${r.kind} ${r.namespace === undefined ? '' : r.namespace + '/'}${r.name ?? '(unnamed)'}`;
    const skipped = r.decision.skipped;
    if (skipped !== undefined) {
      const key = r.namespace ?? '(cluster)';
      const entry = exempt.get(key) ?? { objects: 0, reason: skipped.detail };
      entry.objects++;
      exempt.set(key, entry);
      continue;
    }
    if (r.decision.malformed !== undefined)
      rows.push([object, MALFORMED_RULE, 'deny', denyMessage(r.decision) ?? '']);
    for (const v of r.decision.violations) rows.push([object, v.rule, v.action, v.message]);
  }
  const n = results.length;
  const summary = [
    `${n} object${n === 1 ? '' : 's'} scanned: ${counts.denied} denied, ${counts.warned} warned, ` +
      `${counts.audited} audited, ${counts.allowed} allowed, ${counts.skipped} skipped` +
      (failedKinds > 0 ? `; ${failedKinds} kind${failedKinds === 1 ? '' : 's'} could not be listed` : '') +
      '\n',
    ...[...exempt]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(
        ([ns, { objects, reason }]) =>
          `skipped ${ns}: ${objects} object${objects === 1 ? '' : 's'} (${reason})\n`,
      ),
  ].join('');
  return rows.length === 0
    ? summary
    : formatColumns(['OBJECT', 'RULE', 'ACTION', 'MESSAGE'], rows) + '\n' + summary;
}
