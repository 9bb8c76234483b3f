// `portcullis check`: dry-runs the RuleSet against manifests, `kubectl get -o yaml|json` output and
// AdmissionReviews, through the same `evaluate` the webhook calls. Exit 0: nothing denied;
// 1: something denied; 2: unreadable input or an invalid RuleSet (with file and line).

import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { minimatch } from 'minimatch';
import {
  createRequestFor,
  requestFromSavedReview,
  type CustomKind,
  type CustomKinds,
} from '../admission/review.js';
import { unsentByShippedWebhooks } from '../config/shipped-webhooks.js';
import { DEFAULT_RULES_PATH, loadRuleSetFile } from '../config/ruleset-source.js';
import { parseDocuments, type SourceDocument } from '../config/documents.js';
import {
  isObject,
  RoleIndex,
  outcome,
  type AdmissionRequest,
  type CompiledRuleSet,
  type EvaluationContext,
} from '../core/index.js';

import { judgeAsAdmitted } from './judge.js';
import {
  formatJson,
  formatSarif,
  formatTable,
  inputErrorLocation,
  type CheckResult,
  type InputError,
} from './report.js';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** What `check` knows besides the input: no cluster, so the pod an exec goes into is never looked up. */
const CHECK_CONTEXT: EvaluationContext = {
  connectPod: { ok: false, error: 'portcullis check does not look pods up' },
};
const STDIN = '-';

export interface CheckOptions {
  rules: string;
  output: 'table' | 'json' | 'sarif';
  namespace: string;
  /** Paths (relative to the working directory) matching any of these globs are not read. */
  ignore?: string[];
  /** Exit 1 when a warn rule has something to say, not only when something is denied. */
  failOnWarn?: boolean;
  /** Show what /mutate would patch (it is always applied before judging). */
  showMutations?: boolean;
  /** The time the decisions are made at (exceptions' windows); default now. */
  now?: Date;
}

function parseTime(value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new InvalidArgumentError('must be an RFC 3339 date or date-time');
  return date;
}

export function checkCommand(setExitCode: (code: number) => void): Command {
  return new Command('check')
    .description('Judge manifests, kubectl output or AdmissionReviews with the RuleSet, as the webhook would')
    .argument(
      '<paths...>',
      `files or directories (${[...MANIFEST_EXTENSIONS].join(', ')}, read recursively), or - for stdin`,
    )
    .option('--rules <file>', 'RuleSet file (YAML or JSON)', DEFAULT_RULES_PATH)
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'json', 'sarif'])
        .default('table'),
    )
    .option(
      '-n, --namespace <name>',
      'namespace for namespaced objects that name none (as kubectl does)',
      'default',
    )
    .option(
      '--ignore <glob>',
      'skip paths matching this glob, relative to the working directory (repeatable), e.g. "charts/**"',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--fail-on-warn', 'exit 1 when a warn rule has something to say, as for a denial', false)
    .option('--show-mutations', 'show what /mutate would patch (it is always applied before judging)', false)
    .option(
      '--now <time>',
      'judge as of this time (exceptions apply within their window); default now',
      parseTime,
    )
    .addHelpText(
      'after',
      '\nExit status: 0 nothing denied, 1 something denied (or warned, with --fail-on-warn),\n' +
        '2 an input could not be read (every other file is still judged and reported), nothing to\n' +
        'check at all, or an invalid RuleSet.\n' +
        'A bare object is judged as a CREATE; an AdmissionReview as its request; a List item by item.\n' +
        "As in the cluster, /mutate's patch (seccomp RuntimeDefault) is applied before the rules judge.",
    )
    .action(async (paths: string[], options: CheckOptions) => {
      const run = await runCheck(paths, options, process.stdin);
      process.stdout.write(run.output);
      process.stderr.write(run.warnings.map((w) => `portcullis: warning: ${w}\n`).join(''));
      if (run.errors.length > 0) process.stderr.write(run.errors.map((e) => `portcullis: ${e}\n`).join(''));
      setExitCode(run.exitCode);
    });
}

export interface CheckRun {
  exitCode: 0 | 1 | 2;
  output: string;
  errors: string[];
  /** Said on stderr, without changing the exit status. */
  warnings: string[];
}

/** What the input tells about the cluster, as the API server would know it: Namespaces and CRDs. */
interface InputFacts {
  context: EvaluationContext;
  customKinds: CustomKinds;
}

function objectsOf(value: unknown): unknown[] {
  if (!isObject(value)) return [];
  const kind = value['kind'];
  if (typeof kind === 'string' && (kind === 'List' || kind.endsWith('List')) && Array.isArray(value['items']))
    return value['items'];
  return [value];
}

function inputFacts(documents: readonly SourceDocument[], now: Date): InputFacts {
  const namespaces = new Map<string, unknown>();
  const customKinds = new Map<string, CustomKind>();
  // A binding is judged by what its ClusterRole grants: the ClusterRoles of the whole input are what
  // `check` can see (besides Kubernetes' bootstrap roles).
  const roles = new RoleIndex();
  for (const object of documents.flatMap((d) => objectsOf(d.value))) {
    if (!isObject(object) || !isObject(object['metadata'])) continue;
    if (object['kind'] === 'ClusterRole' && object['apiVersion'] === 'rbac.authorization.k8s.io/v1') {
      roles.add(object);
    }
    const name = object['metadata']['name'];
    if (object['kind'] === 'Namespace' && object['apiVersion'] === 'v1' && typeof name === 'string') {
      namespaces.set(name, object);
    }
    const spec = object['spec'];
    if (object['kind'] === 'CustomResourceDefinition' && isObject(spec) && isObject(spec['names'])) {
      const { group } = spec;
      const { kind, plural } = spec['names'];
      if (typeof group === 'string' && typeof kind === 'string' && typeof plural === 'string') {
        customKinds.set(`${group}/${kind}`, { resource: plural, namespaced: spec['scope'] !== 'Cluster' });
      }
    }
  }
  return { context: { now, ...(namespaces.size === 0 ? {} : { namespaces }), roles }, customKinds };
}

export async function runCheck(
  paths: readonly string[],
  options: CheckOptions,
  stdin: NodeJS.ReadableStream,
): Promise<CheckRun> {
  const load = await loadRuleSetFile(options.rules);
  if (!load.ok) return { exitCode: 2, output: '', errors: load.errors, warnings: [] };
  const ruleset = load.loaded.ruleset;
  const warnings = unsentByShippedWebhooks(ruleset);
  const now = options.now ?? new Date();

  // An unreadable input is reported, and every other one still judged: one broken file in a
  // repository must not hide the verdicts on the rest.
  const inputErrors: InputError[] = [];
  const results: CheckResult[] = [];
  const ignored = (path: string): boolean =>
    (options.ignore ?? []).some((glob) => minimatch(relative('.', path), glob, { dot: true }));
  // Read everything first: a Namespace or a CRD anywhere in the input is known to every object.
  const inputs: { source: string; documents: SourceDocument[] }[] = [];
  for (const input of await expandPaths(paths, inputErrors, ignored)) {
    const source = input === STDIN ? '<stdin>' : input;
    const text = await readInput(input, source, stdin, inputErrors);
    if (text === undefined) continue;
    const parsed = parseDocuments(text);
    if (!parsed.ok) {
      inputErrors.push({ file: source, line: parsed.line, column: parsed.column, message: parsed.message });
      continue;
    }
    inputs.push({ source, documents: parsed.documents });
  }
  const facts = inputFacts(
    inputs.flatMap((i) => i.documents),
    now,
  );
  for (const { source, documents } of inputs) {
    for (const document of documents) {
      judgeDocument(source, document, ruleset, options.namespace, facts, results, inputErrors);
    }
  }
  if (results.length === 0 && inputErrors.length === 0) {
    return {
      exitCode: 2,
      output: '',
      errors: [
        `nothing to check: no Kubernetes object in ${paths.join(' ')} (an empty input is an error, not a pass)`,
      ],
      warnings,
    };
  }

  const report = { results, errors: inputErrors, showMutations: options.showMutations === true };
  const output =
    options.output === 'json'
      ? formatJson(report)
      : options.output === 'sarif'
        ? formatSarif(report, ruleset)
        : formatTable(report);
  const errors = inputErrors.map((e) => `${inputErrorLocation(e)}: ${e.message}`);
  if (inputErrors.length > 0) return { exitCode: 2, output, errors, warnings };
  const failed = results.some(
    (r) => !r.decision.allowed || (options.failOnWarn === true && outcome(r.decision) === 'warn'),
  );
  return { exitCode: failed ? 1 : 0, output, errors, warnings };
}

async function expandPaths(
  paths: readonly string[],
  errors: InputError[],
  ignored: (path: string) => boolean,
): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    if (path === STDIN) {
      files.push(path);
      continue;
    }
    if (ignored(path)) continue;
    try {
      if ((await stat(path)).isDirectory()) files.push(...(await walk(path, ignored)));
      else files.push(path);
    } catch (err) {
      errors.push({ file: path, message: `cannot read (${errorCode(err)})` });
    }
  }
  return files;
}

/** Manifest files below `dir`, in a stable order so results keep their order between runs. */
async function walk(dir: string, ignored: (path: string) => boolean): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (ignored(path)) continue;
    if (entry.isDirectory()) files.push(...(await walk(path, ignored)));
    else if (MANIFEST_EXTENSIONS.has(extname(entry.name))) files.push(path);
  }
  return files;
}

async function readInput(
  path: string,
  source: string,
  stdin: NodeJS.ReadableStream,
  errors: InputError[],
): Promise<string | undefined> {
  try {
    if (path !== STDIN) return await readFile(path, 'utf8');
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    errors.push({ file: source, message: `cannot read (${errorCode(err)})` });
    return undefined;
  }
}

function errorCode(err: unknown): string {
  return err instanceof Error && 'code' in err ? String(err.code) : String(err);
}

function judgeDocument(
  source: string,
  document: SourceDocument,
  ruleset: CompiledRuleSet,
  namespace: string,
  facts: InputFacts,
  results: CheckResult[],
  errors: InputError[],
): void {
  const fail = (line: number, message: string): void => {
    errors.push({ file: source, line, message });
  };
  const value = document.value;
  if (!isObject(value) || typeof value['apiVersion'] !== 'string' || typeof value['kind'] !== 'string') {
    fail(document.line, `document ${document.index} is not a Kubernetes object (needs apiVersion and kind)`);
    return;
  }
  const { apiVersion, kind } = value;
  const judge = (
    request: AdmissionRequest,
    object: unknown,
    itemPath: (string | number)[],
    label: string,
  ): void => {
    const { decision, mutation } = judgeAsAdmitted(request, ruleset, { ...CHECK_CONTEXT, ...facts.context });
    const metadata = isObject(object) && isObject(object['metadata']) ? object['metadata'] : {};
    const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    results.push({
      source: label,
      file: source,
      line: document.lineOf(itemPath),
      lineOf: (path) => document.lineOf([...itemPath, ...path]),
      apiVersion: isObject(object)
        ? (text(object['apiVersion']) ?? request.kind.version)
        : request.kind.version,
      kind: request.kind.kind,
      namespace: request.namespace ?? text(metadata['namespace']),
      name: request.name ?? text(metadata['name']),
      decision,
      mutation,
    });
  };

  if (kind === 'AdmissionReview') {
    const parsed = requestFromSavedReview(value, namespace);
    if (!parsed.ok) {
      fail(document.line, parsed.error);
      return;
    }
    judge(parsed.request, parsed.request.object, ['request', 'object'], `${source}#${document.index}`);
    return;
  }
  if (kind === 'List' || kind.endsWith('List')) {
    const items = value['items'];
    if (!Array.isArray(items)) {
      fail(document.line, `${kind} has no items list`);
      return;
    }
    items.forEach((item: unknown, i) => {
      if (!isObject(item) || typeof item['apiVersion'] !== 'string' || typeof item['kind'] !== 'string') {
        fail(document.lineOf(['items', i]), `items[${i}] is not a Kubernetes object`);
        return;
      }
      const request = createRequestFor(
        { ...item, apiVersion: item['apiVersion'], kind: item['kind'] },
        namespace,
        facts.customKinds,
      );
      judge(request, item, ['items', i], `${source}#${document.index}.items[${i}]`);
    });
    return;
  }
  judge(
    createRequestFor({ ...value, apiVersion, kind }, namespace, facts.customKinds),
    value,
    [],
    `${source}#${document.index}`,
  );
}
