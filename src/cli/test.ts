// `portcullis test [PATH...]`: rule tests kept beside the rules, in git, run in CI — the way
// `kyverno test` and `gator verify` are used. A test file names a RuleSet and cases; each case is
// an object (inline or from a file) with the outcome it must get and, optionally, what each named
// rule must say. Objects are judged by the same path as `check` (mutate, then evaluate), so a test
// that passes here passes in the cluster. Exit 0 all passed, 1 a case failed, 2 a test file is broken.

import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { Command, Option } from 'commander';
import { createRequestFor } from '../admission/review.js';
import { parseDocuments } from '../config/documents.js';
import { loadRuleSetFile } from '../config/ruleset-source.js';
import { isObject, outcome, schemaIssues, formatFieldPath, type Decision } from '../core/index.js';
import { judgeAsAdmitted } from './judge.js';

const TEST_SUFFIXES = ['.test.yaml', '.test.yml'];
const RESULTS = ['deny', 'warn', 'audit', 'excepted', 'pass'] as const;
type RuleResult = (typeof RESULTS)[number];
type Outcome = 'allow' | 'deny' | 'warn' | 'audit';

interface TestCase {
  name: string;
  object?: Record<string, unknown>;
  file?: string;
  expect?: Outcome;
  rules?: Record<string, RuleResult>;
}

interface TestDocument {
  apiVersion: 'portcullis.io/v1';
  kind: 'Test';
  metadata?: { name?: string };
  rules: string;
  now?: string;
  namespace?: string;
  cases: TestCase[];
}

const TEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'rules', 'cases'],
  properties: {
    apiVersion: { const: 'portcullis.io/v1' },
    kind: { const: 'Test' },
    metadata: { type: 'object' },
    rules: { type: 'string', minLength: 1 },
    now: { type: 'string', minLength: 1 },
    namespace: { type: 'string', minLength: 1 },
    cases: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1 },
          object: { type: 'object' },
          file: { type: 'string', minLength: 1 },
          expect: { enum: ['allow', 'deny', 'warn', 'audit'] },
          rules: { type: 'object', additionalProperties: { enum: [...RESULTS] } },
        },
      },
    },
  },
} as const;
const validateTest = new Ajv({ allErrors: true, strict: false }).compile<TestDocument>(TEST_SCHEMA);

export interface CaseResult {
  file: string;
  suite: string;
  name: string;
  /** One per object the case judges (a `file` may hold several). */
  object: string;
  passed: boolean;
  /** What was wrong, empty when it passed. */
  failures: string[];
}

export interface TestRun {
  exitCode: 0 | 1 | 2;
  results: CaseResult[];
  /** Broken test files, with file and line. */
  errors: string[];
}

export function testCommand(setExitCode: (code: number) => void): Command {
  return new Command('test')
    .description('Run rule tests (*.test.yaml files of kind: Test) through the same judgement as check')
    .argument('[paths...]', 'test files, or directories searched for *.test.yaml / *.test.yml', ['.'])
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'junit']).default('text'),
    )
    .addHelpText(
      'after',
      '\nExit status: 0 every case passed, 1 a case failed, 2 a test file is broken or none was found.\n' +
        'A case: {name, object | file, expect: allow|deny|warn|audit, rules: {RULE: deny|warn|audit|excepted|pass}}.',
    )
    .action(async (paths: string[], options: { output: 'text' | 'json' | 'junit' }) => {
      const run = await runTests(paths);
      process.stdout.write(
        options.output === 'json'
          ? formatJson(run)
          : options.output === 'junit'
            ? formatJunit(run)
            : formatText(run),
      );
      if (run.errors.length > 0) process.stderr.write(run.errors.map((e) => `portcullis: ${e}\n`).join(''));
      setExitCode(run.exitCode);
    });
}

export async function runTests(paths: readonly string[]): Promise<TestRun> {
  const errors: string[] = [];
  const files: string[] = [];
  for (const path of paths) {
    try {
      if ((await stat(path)).isDirectory()) files.push(...(await findTestFiles(path)));
      else files.push(path);
    } catch (err) {
      errors.push(
        `${path}: cannot read (${err instanceof Error && 'code' in err ? String(err.code) : String(err)})`,
      );
    }
  }
  if (files.length === 0 && errors.length === 0)
    errors.push(`no test files (*.test.yaml) in ${paths.join(' ')}`);
  const results: CaseResult[] = [];
  for (const file of files) await runFile(file, results, errors);
  const exitCode = errors.length > 0 ? 2 : results.some((r) => !r.passed) ? 1 : 0;
  return { exitCode, results, errors };
}

async function findTestFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && !entry.name.startsWith('.'))
        out.push(...(await findTestFiles(path)));
    } else if (TEST_SUFFIXES.some((suffix) => entry.name.endsWith(suffix))) out.push(path);
  }
  return out;
}

async function runFile(file: string, results: CaseResult[], errors: string[]): Promise<void> {
  const parsed = parseDocuments(await readFile(file, 'utf8').catch(() => ''));
  if (!parsed.ok) {
    errors.push(`${file}:${parsed.line}: ${parsed.message}`);
    return;
  }
  for (const document of parsed.documents) {
    if (!validateTest(document.value)) {
      for (const issue of schemaIssues(validateTest.errors ?? []))
        errors.push(
          `${file}:${document.lineOf(issue.path)}: ${formatFieldPath(issue.path)}: ${issue.message}`,
        );
      continue;
    }
    const test = document.value;
    const base = dirname(file);
    const load = await loadRuleSetFile(resolve(base, test.rules));
    if (!load.ok) {
      errors.push(...load.errors.map((e) => `${file}:${document.lineOf(['rules'])}: rules: ${e}`));
      continue;
    }
    const now = test.now === undefined ? new Date() : new Date(test.now);
    if (Number.isNaN(now.getTime())) {
      errors.push(`${file}:${document.lineOf(['now'])}: now: must be an RFC 3339 date or date-time`);
      continue;
    }
    const suite = test.metadata?.name ?? file;
    for (const [i, c] of test.cases.entries()) {
      const where = `${file}:${document.lineOf(['cases', i])}`;
      if ((c.object === undefined) === (c.file === undefined)) {
        errors.push(`${where}: cases[${i}]: give exactly one of object and file`);
        continue;
      }
      if (c.expect === undefined && c.rules === undefined) {
        errors.push(`${where}: cases[${i}]: expects nothing (give expect, rules or both)`);
        continue;
      }
      for (const rule of Object.keys(c.rules ?? {})) {
        if (!load.loaded.ruleset.rules.some((r) => r.name === rule))
          errors.push(`${where}: cases[${i}].rules.${rule}: no rule of that name in ${test.rules}`);
      }
      const objects =
        c.object !== undefined ? [c.object] : await objectsOf(resolve(base, c.file ?? ''), where, errors);
      for (const object of objects) {
        if (typeof object['apiVersion'] !== 'string' || typeof object['kind'] !== 'string') {
          errors.push(`${where}: cases[${i}]: not a Kubernetes object (needs apiVersion and kind)`);
          continue;
        }
        const request = createRequestFor(
          { ...object, apiVersion: object['apiVersion'], kind: object['kind'] },
          test.namespace ?? 'default',
        );
        const { decision } = judgeAsAdmitted(request, load.loaded.ruleset, { now });
        const failures = compare(c, decision);
        results.push({
          file,
          suite,
          name: c.name,
          object: `${object['kind']} ${request.namespace === undefined ? '' : `${request.namespace}/`}${request.name ?? ''}`,
          passed: failures.length === 0,
          failures,
        });
      }
    }
  }
}

async function objectsOf(path: string, where: string, errors: string[]): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    errors.push(
      `${where}: file ${path}: cannot read (${err instanceof Error && 'code' in err ? String(err.code) : String(err)})`,
    );
    return [];
  }
  const parsed = parseDocuments(text);
  if (!parsed.ok) {
    errors.push(`${path}:${parsed.line}: ${parsed.message}`);
    return [];
  }
  if (extname(path) === '' || parsed.documents.length === 0)
    errors.push(`${where}: file ${path} holds no object`);
  return parsed.documents.flatMap((d) => (isObject(d.value) ? [{ ...d.value }] : []));
}

/** What a rule said about the object: its violations' action, `excepted` when lifted, else `pass`. */
function resultOf(decision: Decision, rule: string): RuleResult {
  const own = decision.violations.filter((v) => v.rule === rule);
  if (own.length === 0) return 'pass';
  if (own.every((v) => v.exception !== undefined)) return 'excepted';
  const standing = own.filter((v) => v.exception === undefined);
  return standing.some((v) => v.action === 'deny')
    ? 'deny'
    : standing.some((v) => v.action === 'warn')
      ? 'warn'
      : 'audit';
}

function compare(c: TestCase, decision: Decision): string[] {
  const failures: string[] = [];
  const got = outcome(decision);
  const said = decision.violations.map((v) => `${v.message} [${v.rule}]`).join('; ');
  if (c.expect !== undefined && got !== c.expect && !(c.expect === 'allow' && got === 'skip')) {
    failures.push(`expected ${c.expect}, got ${got}${said === '' ? '' : ` (${said})`}`);
  }
  if (decision.malformed !== undefined && c.expect !== 'deny') {
    failures.push(
      `the object is malformed: ${formatFieldPath(decision.malformed.path)} ${decision.malformed.message}`,
    );
  }
  for (const [rule, expected] of Object.entries(c.rules ?? {})) {
    const actual = resultOf(decision, rule);
    if (actual !== expected) failures.push(`rule ${rule}: expected ${expected}, got ${actual}`);
  }
  return failures;
}

function formatText(run: TestRun): string {
  const lines = run.results.map(
    (r) =>
      `${r.passed ? 'PASS' : 'FAIL'}  ${r.suite}: ${r.name} (${r.object})${r.passed ? '' : `\n      ${r.failures.join('\n      ')}`}`,
  );
  const failed = run.results.filter((r) => !r.passed).length;
  const broken =
    run.errors.length === 0
      ? ''
      : `; ${run.errors.length} error${run.errors.length === 1 ? '' : 's'} in test files`;
  lines.push(
    `${run.results.length - failed} of ${run.results.length} cases passed${failed === 0 ? '' : `, ${failed} failed`}${broken}`,
  );
  return lines.join('\n') + '\n';
}

function formatJson(run: TestRun): string {
  const failed = run.results.filter((r) => !r.passed).length;
  return (
    JSON.stringify(
      {
        results: run.results,
        errors: run.errors,
        summary: { passed: run.results.length - failed, failed, broken: run.errors.length },
      },
      null,
      2,
    ) + '\n'
  );
}

const xml = (text: string): string =>
  text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c,
  );

/** JUnit XML, one testsuite per test file, one testcase per case and object: what CI systems read. */
function formatJunit(run: TestRun): string {
  const bySuite = new Map<string, CaseResult[]>();
  for (const r of run.results) bySuite.set(r.file, [...(bySuite.get(r.file) ?? []), r]);
  const suites = [...bySuite].map(([file, cases]) => {
    const failures = cases.filter((c) => !c.passed).length;
    const body = cases.map((c) => {
      const open = `    <testcase classname="${xml(cases[0]?.suite ?? file)}" name="${xml(`${c.name} (${c.object})`)}" file="${xml(file)}"`;
      return c.passed
        ? `${open}/>`
        : `${open}>\n      <failure message="${xml(c.failures[0] ?? '')}">${xml(c.failures.join('\n'))}</failure>\n    </testcase>`;
    });
    return `  <testsuite name="${xml(cases[0]?.suite ?? file)}" tests="${cases.length}" failures="${failures}" errors="0">\n${body.join('\n')}\n  </testsuite>`;
  });
  const broken = run.errors.map(
    (e) =>
      `  <testsuite name="broken test files" tests="1" failures="0" errors="1">\n    <testcase name="${xml(e)}">\n      <error message="${xml(e)}"/>\n    </testcase>\n  </testsuite>`,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n${[...suites, ...broken].join('\n')}\n</testsuites>\n`;
}
