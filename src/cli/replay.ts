// `portcullis replay`: judges what already happened. The API server's audit log records every
// create and update with its body (at level Request or RequestResponse); each one is judged again
// with the RuleSet, as the request it was, through the same path the webhook and `check` use. With
// --baseline only what changes between two RuleSets is reported: the question a rule change asks.
// Streams: a multi-GB log is read line by line, and the output is written as it is produced.
// Exit 0: nothing would be denied (newly, with --baseline); 1: something would; 2: an invalid
// RuleSet or input that cannot be read (with file and line).

import { Command, Option } from 'commander';
import { kindsJudgedBy, type ApiResource } from '../admission/kinds.js';
import {
  readAuditLogs,
  formatPosition,
  STDIN,
  type LoggedEvent,
  type LogRecord,
} from '../audit/log-reader.js';
import { loggedRequest, resourceKey } from '../audit/logged-request.js';
import { DEFAULT_RULES_PATH, loadRuleSetFile } from '../config/ruleset-source.js';
import {
  applyMutation,
  mutate,
  type AdmissionRequest,
  type CompiledRuleSet,
  isObject,
  type EvaluationContext,
} from '../core/index.js';
import { judgeAsAdmitted, type Judgement } from './judge.js';
import {
  ReplayReport,
  type JudgedEvent,
  type PreviousSource,
  type ReplayFormat,
  type ReplaySink,
} from './replay-report.js';

export interface ReplayOptions {
  rules: string;
  baseline?: string;
  output: ReplayFormat;
}

export interface ReplayIo {
  stdin: NodeJS.ReadableStream;
  stdout: ReplaySink;
  /** Messages for people: errors, and the progress line when `progress` is set. */
  stderr: { write(text: string): unknown };
  /** Show a progress line (stderr is a terminal). */
  progress: boolean;
  /** Aborted when stdout is gone (`| head`): reading stops, nothing more is written. */
  signal?: AbortSignal;
}

/** Errors printed one by one before the rest are only counted. */
const MAX_PRINTED_ERRORS = 20;
/**
 * Objects whose last logged body is remembered, so an update can be compared with it: those that
 * broke a rule keep their body (a few KB each), the others a mark.
 */
const PREVIOUS_OBJECTS_HELD = 10_000;

export function replayCommand(setExitCode: (code: number) => void): Command {
  return new Command('replay')
    .description("Judge the API server's audit log with the RuleSet: what would it have denied?")
    .argument('<audit-logs...>', 'audit log files (JSON lines, gzip or not, oldest first), or - for stdin')
    .option('--rules <file>', 'RuleSet file (YAML or JSON)', DEFAULT_RULES_PATH)
    .option(
      '--baseline <file>',
      'RuleSet in force now: report only what changes (newly denied, newly allowed)',
    )
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .addHelpText(
      'after',
      '\nExit status: 0 nothing would be denied (newly, with --baseline), 1 something would, 2 invalid\n' +
        'RuleSet or unreadable input. Judged: ResponseComplete events of creates and updates of the kinds\n' +
        'the rules judge that carry a requestObject (audit level Request or RequestResponse).',
    )
    .action(async (logs: string[], options: ReplayOptions) => {
      const closed = new AbortController();
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE') throw err;
        closed.abort();
      });
      const code = await runReplay(logs, options, {
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        progress: process.stderr.isTTY,
        signal: closed.signal,
      });
      setExitCode(closed.signal.aborted ? 0 : code);
    });
}

export async function runReplay(
  logs: readonly string[],
  options: ReplayOptions,
  io: ReplayIo,
): Promise<0 | 1 | 2> {
  const loads = await Promise.all([
    loadRuleSetFile(options.rules),
    options.baseline === undefined ? undefined : loadRuleSetFile(options.baseline),
  ]);
  const errors = loads.flatMap((load) => (load === undefined || load.ok ? [] : load.errors));
  const [rules, baseline] = loads.map((load) => (load?.ok === true ? load.loaded.ruleset : undefined));
  if (errors.length > 0 || rules === undefined) {
    io.stderr.write(errors.map((e) => `portcullis: ${e}\n`).join(''));
    return 2;
  }
  if (logs.filter((l) => l === STDIN).length > 1) {
    io.stderr.write('portcullis: - (stdin) given more than once\n');
    return 2;
  }

  const judgedResources = new Map<string, ApiResource>();
  for (const r of [...kindsJudgedBy(rules), ...(baseline === undefined ? [] : kindsJudgedBy(baseline))]) {
    judgedResources.set(resourceKey(r.group, r.resource), r);
  }
  const report = new ReplayReport(options.output, io.stdout, baseline !== undefined, io.signal);
  const previous = new PreviousObjects(PREVIOUS_OBJECTS_HELD);
  const progress = io.progress ? new Progress(io.stderr) : undefined;
  let unreadable = 0;

  await report.begin();
  for await (const record of readAuditLogs(logs, { stdin: io.stdin })) {
    if (io.signal?.aborted === true) break;
    progress?.tick(record);
    if (!record.ok) {
      if (record.kind === 'truncated') report.summary.truncated++;
      else {
        report.summary.unreadable++;
        if (++unreadable <= MAX_PRINTED_ERRORS) {
          progress?.clear();
          io.stderr.write(`portcullis: ${formatPosition(record.at)}: ${record.message}\n`);
        }
      }
      continue;
    }
    report.summary.events++;
    const { event } = record;
    const logged = loggedRequest(event, judgedResources);
    if (!logged.judged) {
      report.summary.notJudged[logged.reason]++;
      if (event.verb === 'delete' && event.stage === 'ResponseComplete')
        previous.forget(objectKeyOf(event.objectRef));
      continue;
    }
    const { request } = logged;
    // Without a name (a create with generateName) there is no object to follow.
    const key =
      request.name === undefined
        ? undefined
        : objectKeyOf({ ...event.objectRef, name: request.name, namespace: request.namespace });
    const held = request.operation === 'UPDATE' && key !== undefined ? previous.get(key) : undefined;
    const previousBody = held ?? undefined;
    // Judged at the time it happened, for a check that reads the time.
    const context = contextAt(event);
    const current = judgeWithPrevious(request, rules, previousBody, context);
    const old =
      baseline === undefined ? undefined : judgeWithPrevious(request, baseline, previousBody, context);
    // An update left unchanged was not evaluated: the object still breaks what its previous body broke.
    const breaks = (j: Judgement | undefined): boolean =>
      j !== undefined && (j.decision.violations.length > 0 || j.decision.skipped?.kind === 'unchanged');
    const broke = breaks(current) || breaks(old);
    if (key !== undefined) previous.set(key, broke ? lastBody(event, request) : null);
    const judged: JudgedEvent = {
      event,
      at: record.at,
      request,
      resource: logged.resource,
      ...current,
      ...(old === undefined ? {} : { baseline: old }),
      ...(request.operation === 'UPDATE' ? { previous: previousKind(held) } : {}),
    };
    await report.add(judged);
  }
  progress?.clear();
  if (unreadable > MAX_PRINTED_ERRORS) {
    io.stderr.write(`portcullis: … and ${unreadable - MAX_PRINTED_ERRORS} more unreadable lines\n`);
  }
  if (report.summary.truncated > 0) {
    io.stderr.write(
      `portcullis: note: ${report.summary.truncated} incomplete last line(s) skipped (a log still being written)\n`,
    );
  }
  await report.end();
  if (unreadable > 0) return 2;
  return report.somethingDenied() ? 1 : 0;
}

/**
 * What an UPDATE is compared with: the object as the API server stored it after its previous write
 * (the event's responseObject, at level RequestResponse), else that write's request body (level
 * Request; not yet defaulted, so the first update after a create usually differs from it).
 */
interface PreviousBody {
  json: string;
  stored: boolean;
}

function lastBody(event: LoggedEvent, request: AdmissionRequest): PreviousBody {
  const response = event.responseObject;
  const stored = isObject(response) && response['kind'] === request.kind.kind;
  return { json: JSON.stringify(stored ? response : request.object), stored };
}

function previousKind(held: PreviousBody | null | undefined): PreviousSource {
  if (held === undefined) return 'not in log';
  if (held === null) return 'broke no rule';
  return held.stored ? 'stored object' : 'request body';
}

/**
 * Judges an UPDATE against the object's previous body when one is held, as the webhook compares
 * with the stored object: an update that leaves what the rules judge unchanged (a label, a scale)
 * is not judged again. This RuleSet's own mutation is applied to the previous body, as the cluster
 * would have stored it with Portcullis in force.
 */
function judgeWithPrevious(
  request: AdmissionRequest,
  ruleset: CompiledRuleSet,
  previousBody: PreviousBody | undefined,
  context: EvaluationContext,
): Judgement {
  if (previousBody === undefined) return judgeAsAdmitted(request, ruleset, context);
  const body: unknown = JSON.parse(previousBody.json);
  const asCreated = mutate({ ...request, operation: 'CREATE', object: body }, ruleset);
  const stored = asCreated.patch.length === 0 ? body : applyMutation(body, asCreated.patch);
  return judgeAsAdmitted({ ...request, oldObject: stored }, ruleset, context);
}

function contextAt(event: LoggedEvent): EvaluationContext {
  const stamp = event.requestReceivedTimestamp ?? event.stageTimestamp;
  const time = stamp === undefined ? Number.NaN : Date.parse(stamp);
  return Number.isNaN(time) ? {} : { now: new Date(time) };
}

function objectKeyOf(ref: JudgedEvent['event']['objectRef']): string {
  if (ref === undefined) return '';
  return `${ref.apiGroup ?? ''}/${ref.resource ?? ''}/${ref.namespace ?? ''}/${ref.name ?? ''}`;
}

/**
 * What the log said about each object last: the body if it broke a rule (as JSON text, a third of
 * the memory of the parsed object), or that it broke none. That is all an update needs: against a
 * previous body that broke no rule, any violation now is a change. Bounded; the least recently
 * written are forgotten first.
 */
class PreviousObjects {
  private readonly last = new Map<string, PreviousBody | null>();

  constructor(private readonly capacity: number) {}

  /** `undefined`: the object was not seen; `null`: its last body broke no rule. */
  get(key: string): PreviousBody | null | undefined {
    return this.last.get(key);
  }

  set(key: string, body: PreviousBody | null): void {
    this.last.delete(key);
    this.last.set(key, body);
    if (this.last.size > this.capacity) {
      const oldest = this.last.keys().next();
      if (oldest.done !== true) this.last.delete(oldest.value);
    }
  }

  forget(key: string): void {
    this.last.delete(key);
  }
}

/** `replay: 1,234,567 events, 48,210/s, audit.log` on one self-overwriting stderr line. */
class Progress {
  private readonly started = performance.now();
  private last = this.started;
  private records = 0;
  private shown = false;

  constructor(private readonly stderr: { write(text: string): unknown }) {}

  tick(record: LogRecord): void {
    // Look at the clock every 1024 records only: it is the hot loop.
    if ((++this.records & 1023) !== 0) return;
    const now = performance.now();
    if (now - this.last < 500) return;
    this.last = now;
    const rate = Math.round(this.records / ((now - this.started) / 1000));
    this.stderr.write(
      `\rreplay: ${this.records.toLocaleString('en-US')} events, ${rate.toLocaleString('en-US')}/s, ${record.at.source}\x1b[K`,
    );
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}
