// The three outputs of `portcullis check`: a table for people, JSON for scripts, SARIF 2.1.0 for
// code-scanning UIs. All three print the same decisions with the same words (core/messages.ts).

import { isAbsolute, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CHECKS,
  denyMessage,
  formatFieldPath,
  outcome,
  violationText,
  type Action,
  type CompiledRuleSet,
  type Decision,
  type FieldPath,
  type Mutation,
} from '../core/index.js';
import { VERSION } from '../version.js';

export interface CheckResult {
  /** `<file>#<document index>`, with `.items[i]` for an item of a List. */
  source: string;
  file: string;
  line: number;
  lineOf(path: FieldPath): number;
  apiVersion: string;
  kind: string;
  namespace: string | undefined;
  name: string | undefined;
  decision: Decision;
  /** What /mutate would patch before validation (the decision judges the patched object). */
  mutation: Mutation;
}

/** An input that could not be read or is not a Kubernetes object; the rest is still judged. */
export interface InputError {
  file: string;
  line?: number;
  column?: number;
  message: string;
}

/** `file:line:column`, as far as known. */
export function inputErrorLocation(e: InputError): string {
  return `${e.file}${e.line === undefined ? '' : `:${e.line}`}${e.line === undefined || e.column === undefined ? '' : `:${e.column}`}`;
}

export interface CheckReport {
  results: readonly CheckResult[];
  errors: readonly InputError[];
  /** Rows for what /mutate patches (always applied before judging; shown on request). */
  showMutations: boolean;
}

/** The rule name reports give an object that cannot be read (the webhook denies it). */
export const MALFORMED_RULE = 'malformed-object';

export function formatJson({ results, errors }: CheckReport): string {
  const body = {
    results: results.map((r) => ({
      source: r.source,
      apiVersion: r.apiVersion,
      kind: r.kind,
      namespace: r.namespace ?? null,
      name: r.name ?? null,
      allowed: r.decision.allowed,
      ...(r.decision.skipped === undefined ? {} : { skipped: r.decision.skipped.detail }),
      ...(r.decision.malformed === undefined ? {} : { malformed: denyMessage(r.decision) }),
      ...(r.mutation.patch.length === 0
        ? {}
        : { mutated: { rules: r.mutation.rules, patch: r.mutation.patch } }),
      violations: r.decision.violations.map((v) => ({
        rule: v.rule,
        check: v.check,
        action: v.action,
        message: v.message,
        field: formatFieldPath(v.path),
        line: r.lineOf(v.path),
        ...(v.exception === undefined ? {} : { exception: v.exception }),
      })),
      ...(r.decision.lapsedExceptions === undefined ? {} : { lapsedExceptions: r.decision.lapsedExceptions }),
    })),
    errors: errors.map((e) => ({
      file: e.file,
      line: e.line ?? null,
      column: e.column ?? null,
      message: e.message,
    })),
    summary: { ...summarise(results), unreadable: errors.length },
  };
  return JSON.stringify(body, null, 2) + '\n';
}

function summarise(results: readonly CheckResult[]): Record<string, number> {
  const summary = { objects: results.length, denied: 0, warned: 0, audited: 0, allowed: 0, skipped: 0 };
  for (const r of results) {
    const o = outcome(r.decision);
    if (o === 'deny') summary.denied++;
    else if (o === 'warn') summary.warned++;
    else if (o === 'audit') summary.audited++;
    else if (o === 'skip') summary.skipped++;
    else summary.allowed++;
  }
  return summary;
}

export function formatTable({ results, errors, showMutations }: CheckReport): string {
  const rows: string[][] = [];
  for (const e of errors) {
    rows.push([inputErrorLocation(e), '-', 'unreadable', 'error', e.message]);
  }
  for (const r of results) {
    const object = `${r.kind} ${r.namespace === undefined ? '' : r.namespace + '/'}${r.name ?? '(unnamed)'}`;
    if (r.decision.malformed !== undefined) {
      rows.push([
        `${r.file}:${r.lineOf(r.decision.malformed.path)}`,
        object,
        MALFORMED_RULE,
        'deny',
        denyMessage(r.decision) ?? '',
      ]);
    }
    if (showMutations && r.mutation.patch.length > 0) {
      const fields = r.mutation.patch.map((op) => op.path).join(', ');
      rows.push([
        `${r.file}:${r.line}`,
        object,
        r.mutation.rules.join(','),
        'mutate',
        `/mutate adds ${fields}`,
      ]);
    }
    for (const v of r.decision.violations) {
      const action = v.exception === undefined ? v.action : 'excepted';
      const message =
        v.exception === undefined
          ? v.message
          : `${v.message} (exception "${v.exception.name}" until ${v.exception.expires}: ${v.exception.reason})`;
      rows.push([`${r.file}:${r.lineOf(v.path)}`, object, v.rule, action, message]);
    }
    for (const e of r.decision.lapsedExceptions ?? []) {
      const state = e.state === 'expired' ? `expired at ${e.expires}` : 'not in force yet';
      rows.push([
        `${r.file}:${r.line}`,
        object,
        e.name,
        'lapsed',
        `exception "${e.name}" ${state}: not applied`,
      ]);
    }
  }
  const s = summarise(results);
  const unreadable =
    errors.length === 0 ? '' : `; ${errors.length} input${errors.length === 1 ? '' : 's'} unreadable`;
  const summaryLine =
    `${s.objects} object${s.objects === 1 ? '' : 's'} checked: ${s.denied} denied, ${s.warned} warned, ` +
    `${s.audited} audited, ${s.allowed} allowed, ${s.skipped} skipped${unreadable}\n`;
  if (rows.length === 0) return summaryLine;
  return formatColumns(['LOCATION', 'OBJECT', 'RULE', 'ACTION', 'MESSAGE'], rows) + '\n' + summaryLine;
}

/** Rows under a header, each column as wide as its widest cell; the last column is not padded. */
export function formatColumns(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]): string =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

const LEVEL_OF_ACTION: Record<Action, 'error' | 'warning' | 'note'> = {
  deny: 'error',
  warn: 'warning',
  audit: 'note',
};

const SRCROOT = '%SRCROOT%';

/** A file as SARIF names it: relative to the working directory, `/`-separated, under %SRCROOT%. */
function artifactOf(file: string): { uri: string; uriBaseId?: string } {
  if (file === '<stdin>') return { uri: 'stdin' };
  const rel = relative(process.cwd(), resolve(file)).split(sep).join('/');
  // Outside the working directory a relative reference would climb out of the base: give it whole.
  if (rel.startsWith('../') || isAbsolute(rel)) return { uri: pathToFileURL(resolve(file)).href };
  return { uri: encodeURI(rel), uriBaseId: SRCROOT };
}

/**
 * SARIF 2.1.0. Locations are relative to the working directory under the base id %SRCROOT%, which
 * `originalUriBaseIds` anchors there, so code-scanning UIs (GitHub's among them) place them in the
 * repository; standard input has no artifact and gets none.
 */
export function formatSarif({ results, errors }: CheckReport, ruleset: CompiledRuleSet): string {
  const ruleDocs = ruleset.document.rules;
  const descriptors = [
    ...ruleDocs.map((rule) => ({
      id: rule.name,
      name: rule.check,
      shortDescription: { text: rule.description ?? CHECKS.get(rule.check)?.summary ?? rule.check },
      fullDescription: { text: CHECKS.get(rule.check)?.summary ?? rule.check },
      defaultConfiguration: { level: LEVEL_OF_ACTION[rule.action ?? 'deny'] },
      properties: { check: rule.check },
    })),
    {
      id: MALFORMED_RULE,
      name: 'malformedObject',
      shortDescription: { text: 'The object cannot be read; the webhook fails closed and denies it.' },
      defaultConfiguration: { level: 'error' as const },
    },
  ];
  const indexOf = new Map(descriptors.map((d, i) => [d.id, i]));
  const location = (file: string, line: number) => ({
    physicalLocation: { artifactLocation: artifactOf(file), region: { startLine: line } },
  });
  const sarifResults = results.flatMap((r) => {
    const out = r.decision.violations.map((v) => ({
      ruleId: v.rule,
      ruleIndex: indexOf.get(v.rule) ?? -1,
      level: LEVEL_OF_ACTION[v.action],
      message: { text: `${r.kind} ${r.name ?? ''}: ${violationText(v)}` },
      locations: [location(r.file, r.lineOf(v.path))],
      properties: { field: formatFieldPath(v.path), source: r.source },
    }));
    if (r.decision.malformed !== undefined) {
      out.push({
        ruleId: MALFORMED_RULE,
        ruleIndex: indexOf.get(MALFORMED_RULE) ?? -1,
        level: 'error',
        message: { text: `${r.kind} ${r.name ?? ''}: ${denyMessage(r.decision) ?? ''}` },
        locations: [location(r.file, r.lineOf(r.decision.malformed.path))],
        properties: { field: formatFieldPath(r.decision.malformed.path), source: r.source },
      });
    }
    return out;
  });
  const log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'portcullis', version: VERSION, rules: descriptors } },
        originalUriBaseIds: { [SRCROOT]: { uri: pathToFileURL(process.cwd() + sep).href } },
        invocations: [
          {
            executionSuccessful: errors.length === 0,
            toolExecutionNotifications: errors.map((e) => ({
              level: 'error',
              message: { text: e.message },
              locations: [
                {
                  physicalLocation: {
                    artifactLocation: artifactOf(e.file),
                    ...(e.line === undefined
                      ? {}
                      : {
                          region: {
                            startLine: e.line,
                            ...(e.column === undefined ? {} : { startColumn: e.column }),
                          },
                        }),
                  },
                },
              ],
            })),
          },
        ],
        results: sarifResults,
      },
    ],
  };
  return JSON.stringify(log, null, 2) + '\n';
}
