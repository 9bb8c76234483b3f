// What `replay` prints. The table answers "who would have been blocked, by which rule, how often,
// since when": one row per rule, namespace and user. JSON has every judged event (with --baseline,
// every changed one) and the counts; it is written event by event, never held whole.

import type { ApiResource } from '../admission/kinds.js';
import type { LoggedEvent, LogPosition } from '../audit/log-reader.js';
import { formatPosition } from '../audit/log-reader.js';
import { NOT_JUDGED_REASONS, type NotJudgedReason } from '../audit/logged-request.js';
import {
  denyMessage,
  formatFieldPath,
  outcome,
  type AdmissionRequest,
  type Decision,
  type Violation,
} from '../core/index.js';
import type { Judgement } from './judge.js';
import { formatColumns, MALFORMED_RULE } from './report.js';

export type ReplayFormat = 'table' | 'json';

/** Where the report goes: process.stdout, or any writable that signals backpressure the same way. */
export interface ReplaySink {
  write(chunk: string): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

export type Change = 'newly-denied' | 'newly-allowed';

/**
 * What an UPDATE was compared with, from the log read so far: the object as stored after its last
 * write (level RequestResponse), that write's request body (level Request), nothing to compare
 * with because that write broke no rule (any violation now is a change), or no earlier write.
 */
export type PreviousSource = 'stored object' | 'request body' | 'broke no rule' | 'not in log';

export interface JudgedEvent extends Judgement {
  event: LoggedEvent;
  at: LogPosition;
  request: AdmissionRequest;
  resource: ApiResource;
  /** The same request under --baseline. */
  baseline?: Judgement;
  /** For an UPDATE: what it was compared with. */
  previous?: PreviousSource;
}

export interface ReplaySummary {
  /** Audit events read (an EventList counts its items). */
  events: number;
  judged: number;
  denied: number;
  warned: number;
  audited: number;
  allowed: number;
  skipped: number;
  /**
   * UPDATEs with violations that could not be compared with the stored object (no earlier write in
   * the log, or only its request body): the webhook would let one through that leaves what the
   * rules judge unchanged, and these may include such.
   */
  updatesNotCompared: number;
  notJudged: Record<NotJudgedReason, number>;
  /** Lines that are not audit events (reported on stderr with file and line). */
  unreadable: number;
  /** Incomplete last lines of a log still being written. */
  truncated: number;
  newlyDenied?: number;
  newlyAllowed?: number;
}

/** A MAX_NAMED distinct objects are named per row; the rest are only counted. */
const MAX_NAMED = 3;

interface Row {
  change: Change | undefined;
  rule: string;
  action: string;
  namespace: string;
  user: string;
  events: number;
  first: string;
  last: string;
  objects: string[];
}

export class ReplayReport {
  readonly summary: ReplaySummary;
  private readonly rows = new Map<string, Row>();
  private wroteEvent = false;

  constructor(
    private readonly format: ReplayFormat,
    private readonly out: ReplaySink,
    private readonly withBaseline: boolean,
    private readonly closed?: AbortSignal,
  ) {
    this.summary = {
      events: 0,
      judged: 0,
      denied: 0,
      warned: 0,
      audited: 0,
      allowed: 0,
      skipped: 0,
      updatesNotCompared: 0,
      notJudged: { stage: 0, verb: 0, kind: 0, refused: 0, patch: 0, noBody: 0 },
      unreadable: 0,
      truncated: 0,
      ...(withBaseline ? { newlyDenied: 0, newlyAllowed: 0 } : {}),
    };
  }

  async begin(): Promise<void> {
    if (this.format === 'json') await this.write('{"events":[');
  }

  async add(judged: JudgedEvent): Promise<void> {
    const s = this.summary;
    s.judged++;
    const o = outcome(judged.decision);
    if (o === 'deny') s.denied++;
    else if (o === 'warn') s.warned++;
    else if (o === 'audit') s.audited++;
    else if (o === 'skip') s.skipped++;
    else s.allowed++;
    const uncompared = judged.previous === 'not in log' || judged.previous === 'request body';
    if (uncompared && o !== 'skip' && o !== 'allow') s.updatesNotCompared++;

    const change = changeOf(judged);
    if (change === 'newly-denied') s.newlyDenied = (s.newlyDenied ?? 0) + 1;
    if (change === 'newly-allowed') s.newlyAllowed = (s.newlyAllowed ?? 0) + 1;
    if (this.withBaseline && change === undefined) return;

    this.count(judged, change);
    if (this.format === 'json') {
      await this.write(`${this.wroteEvent ? ',' : ''}\n${JSON.stringify(eventJson(judged, change))}`);
      this.wroteEvent = true;
    }
  }

  async end(): Promise<void> {
    if (this.format === 'json') {
      await this.write(
        `${this.wroteEvent ? '\n' : ''}],\n"summary":${JSON.stringify(this.summary, null, 2)}}\n`,
      );
      return;
    }
    await this.write(this.table());
  }

  somethingDenied(): boolean {
    return this.withBaseline ? (this.summary.newlyDenied ?? 0) > 0 : this.summary.denied > 0;
  }

  private count(judged: JudgedEvent, change: Change | undefined): void {
    // Newly allowed: the rules that denied it under the baseline are the ones that no longer do.
    const source = change === 'newly-allowed' ? (judged.baseline ?? judged) : judged;
    const decision = source.decision;
    const rules = new Map<string, string>();
    if (decision.malformed !== undefined) rules.set(MALFORMED_RULE, 'deny');
    for (const v of decision.violations) {
      if (change !== undefined && v.action !== 'deny') continue;
      if (!rules.has(v.rule)) rules.set(v.rule, v.action);
    }
    const namespace = judged.request.namespace ?? '';
    const user = judged.request.userInfo.username ?? '';
    const time = timeOf(judged.event);
    const object = `${judged.request.kind.kind} ${judged.request.name ?? '(unnamed)'}`;
    for (const [rule, action] of rules) {
      const key = JSON.stringify([change, rule, action, namespace, user]);
      const row = this.rows.get(key);
      if (row === undefined) {
        this.rows.set(key, {
          change,
          rule,
          action,
          namespace,
          user,
          events: 1,
          first: time,
          last: time,
          objects: [object],
        });
        continue;
      }
      row.events++;
      // RFC 3339 stamps in UTC with a fixed number of digits, as the API server writes them, sort as text.
      if (time !== '' && (row.first === '' || time < row.first)) row.first = time;
      if (time > row.last) row.last = time;
      if (row.objects.length <= MAX_NAMED && !row.objects.includes(object)) row.objects.push(object);
    }
  }

  private table(): string {
    const rows = [...this.rows.values()].sort(
      (a, b) =>
        (a.change ?? '').localeCompare(b.change ?? '') ||
        b.events - a.events ||
        a.rule.localeCompare(b.rule) ||
        a.namespace.localeCompare(b.namespace) ||
        a.user.localeCompare(b.user),
    );
    const cells = rows.map((r) => [
      ...(this.withBaseline ? [r.change === 'newly-allowed' ? 'newly allowed' : 'newly denied'] : []),
      r.rule,
      r.action,
      r.namespace === '' ? '(cluster)' : r.namespace,
      r.user === '' ? '(unknown)' : r.user,
      String(r.events),
      r.first,
      r.last,
      r.objects.slice(0, MAX_NAMED).join(', ') + (r.objects.length > MAX_NAMED ? ', …' : ''),
    ]);
    const header = [
      ...(this.withBaseline ? ['CHANGE'] : []),
      'RULE',
      'ACTION',
      'NAMESPACE',
      'USER',
      'EVENTS',
      'FIRST SEEN',
      'LAST SEEN',
      'OBJECTS',
    ];
    return (cells.length === 0 ? '' : formatColumns(header, cells) + '\n') + summaryLines(this.summary);
  }

  private write(text: string): Promise<void> {
    const closed = this.closed;
    if (closed?.aborted === true || this.out.write(text)) return Promise.resolve();
    return new Promise((resolve) => {
      this.out.once('drain', resolve);
      // A reader that went away never drains.
      closed?.addEventListener(
        'abort',
        () => {
          resolve();
        },
        { once: true },
      );
    });
  }
}

function changeOf(judged: JudgedEvent): Change | undefined {
  if (judged.baseline === undefined) return undefined;
  const now = judged.decision.allowed;
  const before = judged.baseline.decision.allowed;
  return now === before ? undefined : now ? 'newly-allowed' : 'newly-denied';
}

function timeOf(event: LoggedEvent): string {
  return event.requestReceivedTimestamp ?? event.stageTimestamp ?? '';
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

const REASON_TEXT: Record<NotJudgedReason, (n: number) => string> = {
  stage: (n) => `${n} not at stage ResponseComplete`,
  verb: (n) => plural(n, 'read, watch or delete', 'reads, watches or deletes'),
  kind: (n) => `${n} of kinds no rule judges`,
  refused: (n) => `${n} refused by the API server`,
  patch: (n) => `${plural(n, 'patch', 'patches')} (the log holds the patch, not the object)`,
  noBody: (n) => `${n} without a requestObject (level Metadata)`,
};

export function summaryLines(s: ReplaySummary): string {
  const lines = [
    `${plural(s.events, 'event')} read: ${s.judged} judged (${s.denied} would be denied, ${s.warned} warned, ` +
      `${s.audited} audited, ${s.allowed} allowed, ${s.skipped} skipped)`,
    `not judged: ${NOT_JUDGED_REASONS.map((r) => REASON_TEXT[r](s.notJudged[r])).join(', ')}`,
  ];
  if (s.newlyDenied !== undefined) {
    lines.push(`against the baseline: ${s.newlyDenied} newly denied, ${s.newlyAllowed ?? 0} newly allowed`);
  }
  if (s.updatesNotCompared > 0) {
    lines.push(
      `${plural(s.updatesNotCompared, 'update')} with violations not compared with the stored object (no earlier ` +
        'write in the log, or only its request body at level Request): some may leave what the rules judge unchanged',
    );
  }
  if (s.unreadable > 0 || s.truncated > 0) {
    lines.push(`${s.unreadable} unreadable lines, ${s.truncated} incomplete last lines`);
  }
  return lines.join('\n') + '\n';
}

function violationJson(v: Violation): Record<string, unknown> {
  return {
    rule: v.rule,
    check: v.check,
    action: v.action,
    message: v.message,
    field: formatFieldPath(v.path),
  };
}

function verdictJson(decision: Decision): Record<string, unknown> {
  return {
    allowed: decision.allowed,
    ...(decision.skipped === undefined ? {} : { skipped: decision.skipped.detail }),
    ...(decision.malformed === undefined ? {} : { malformed: denyMessage(decision) }),
    violations: decision.violations.map(violationJson),
  };
}

function eventJson(judged: JudgedEvent, change: Change | undefined): Record<string, unknown> {
  const { event, request, mutation } = judged;
  const user = request.userInfo;
  return {
    auditID: event.auditID,
    time: timeOf(event),
    source: formatPosition(judged.at),
    verb: event.verb,
    user: { username: user.username ?? null, groups: user.groups ?? [] },
    ...(event.impersonatedUser === undefined ? {} : { impersonatedBy: event.user.username ?? null }),
    objectRef: event.objectRef ?? null,
    ...(request.dryRun === true ? { dryRun: true } : {}),
    ...(judged.previous === undefined ? {} : { previous: judged.previous }),
    ...(change === undefined ? {} : { change }),
    ...verdictJson(judged.decision),
    ...(mutation.patch.length === 0 ? {} : { mutated: { rules: mutation.rules, patch: mutation.patch } }),
    ...(judged.baseline === undefined ? {} : { baseline: verdictJson(judged.baseline.decision) }),
  };
}
