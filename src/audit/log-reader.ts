// Reads the API server's audit log as it is found on disk or on a pipe: JSON lines of
// audit.k8s.io/v1 `Event` from the log backend, the current file and its rotated backups, gzip
// compressed or not (recognised by its magic bytes, not its name, so `zcat`-less pipes work too),
// and `EventList` batches as the webhook backend POSTs them (one per line, or one pretty-printed
// document per file). It streams: memory holds one line at a time, and a line is bounded too, so a
// corrupt multi-GB file without a newline cannot exhaust it.
//
// What cannot be read is returned, not thrown, with the file and line: the caller decides. A last
// line that does not parse and has no newline is `truncated` (the API server was writing it when
// the file was copied), which is normal for a live log and not an error.

import { createReadStream } from 'node:fs';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Ajv } from 'ajv';
import type { UserInfo } from '../core/index.js';

export const STDIN = '-';
/**
 * The API server takes request bodies up to 3 MiB, and an event at level RequestResponse carries
 * the request and the response: 16 MiB bounds any real line with room to spare.
 */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

const AUDIT_API_VERSIONS = ['audit.k8s.io/v1', 'audit.k8s.io/v1beta1'];

export interface LoggedObjectRef {
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  apiGroup?: string;
  apiVersion?: string;
}

/** The fields of an audit.k8s.io/v1 Event that replay reads; everything else is left alone. */
export interface LoggedEvent {
  kind: 'Event';
  apiVersion: string;
  level?: string;
  auditID: string;
  stage: string;
  requestURI?: string;
  verb: string;
  user: UserInfo;
  impersonatedUser?: UserInfo;
  objectRef?: LoggedObjectRef;
  responseStatus?: { code?: number };
  requestObject?: unknown;
  /** At level RequestResponse: the object as stored (defaulted, admitted). */
  responseObject?: unknown;
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
}

const userInfo = {
  type: 'object',
  properties: {
    username: { type: 'string' },
    uid: { type: 'string' },
    groups: { type: 'array', items: { type: 'string' } },
    extra: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
  },
};
const optionalString = { type: 'string' };

const EVENT_SCHEMA = {
  type: 'object',
  required: ['kind', 'apiVersion', 'auditID', 'stage', 'verb', 'user'],
  properties: {
    kind: { const: 'Event' },
    apiVersion: { enum: AUDIT_API_VERSIONS },
    level: optionalString,
    auditID: { type: 'string', minLength: 1 },
    stage: { type: 'string' },
    requestURI: optionalString,
    verb: { type: 'string' },
    user: userInfo,
    impersonatedUser: userInfo,
    objectRef: {
      type: 'object',
      properties: {
        resource: optionalString,
        subresource: optionalString,
        namespace: optionalString,
        name: optionalString,
        apiGroup: optionalString,
        apiVersion: optionalString,
      },
    },
    responseStatus: { type: 'object', properties: { code: { type: 'integer' } } },
    requestReceivedTimestamp: optionalString,
    stageTimestamp: optionalString,
  },
};

const validateEvent = new Ajv({ allErrors: false, strict: false }).compile<LoggedEvent>(EVENT_SCHEMA);

/** Where a record came from: `audit.log:12`, and `items[3]` of an EventList on that line. */
export interface LogPosition {
  source: string;
  line: number;
  item?: number;
}

export function formatPosition(p: LogPosition): string {
  return `${p.source}:${p.line}${p.item === undefined ? '' : ` items[${p.item}]`}`;
}

export type LogIssueKind = 'unreadable' | 'truncated';

export type LogRecord =
  | { ok: true; event: LoggedEvent; at: LogPosition }
  | { ok: false; kind: LogIssueKind; message: string; at: LogPosition };

export interface ReadOptions {
  stdin: NodeJS.ReadableStream;
  maxLineBytes?: number;
}

/** Every event of `inputs` (paths, or `-` for stdin), in order, and every line that is not one. */
export async function* readAuditLogs(
  inputs: readonly string[],
  options: ReadOptions,
): AsyncGenerator<LogRecord> {
  for (const input of inputs) {
    const source = input === STDIN ? '<stdin>' : input;
    const raw: AsyncIterable<unknown> = input === STDIN ? options.stdin : createReadStream(input);
    yield* readOne(raw, source, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  }
}

async function* readOne(
  raw: AsyncIterable<unknown>,
  source: string,
  maxLineBytes: number,
): AsyncGenerator<LogRecord> {
  let lineNumber = 0;
  const lines = new LineSplitter(maxLineBytes);
  // Set when the first line is a lone `{`: the file is one pretty-printed document (`jq .` output).
  let document: DocumentCollector | undefined;
  try {
    for await (const chunk of decompressed(raw)) {
      for (const piece of lines.push(chunk)) {
        lineNumber++;
        if (document !== undefined) {
          if (!document.add(piece)) {
            yield tooLong({ source, line: 1 }, maxLineBytes, 'document');
            return;
          }
          continue;
        }
        if (piece === TOO_LONG) {
          yield tooLong({ source, line: lineNumber }, maxLineBytes, 'line');
          continue;
        }
        const text = piece.toString('utf8');
        if (lineNumber === 1 && text.trim() === '{') {
          document = new DocumentCollector(maxLineBytes);
          document.add(piece);
          continue;
        }
        yield* recordsOfLine(text, { source, line: lineNumber }, false);
      }
    }
  } catch (err) {
    yield {
      ok: false,
      kind: 'unreadable',
      message: `cannot read (${errorText(err)})`,
      at: { source, line: lineNumber + 1 },
    };
    return;
  }
  const last = lines.end();
  if (document !== undefined) {
    if (last !== undefined && (last === TOO_LONG || !document.add(last))) {
      yield tooLong({ source, line: 1 }, maxLineBytes, 'document');
      return;
    }
    yield* recordsOfLine(document.text(), { source, line: 1 }, false);
    return;
  }
  if (last === TOO_LONG) yield tooLong({ source, line: lineNumber + 1 }, maxLineBytes, 'line');
  else if (last !== undefined)
    yield* recordsOfLine(last.toString('utf8'), { source, line: lineNumber + 1 }, true);
}

function tooLong(at: LogPosition, max: number, what: 'line' | 'document'): LogRecord {
  return { ok: false, kind: 'unreadable', message: `${what} longer than ${max} bytes, skipped`, at };
}

function* recordsOfLine(text: string, at: LogPosition, unterminated: boolean): Generator<LogRecord> {
  if (text.trim() === '') return;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    yield unterminated
      ? {
          ok: false,
          kind: 'truncated',
          message: 'last line is incomplete (still being written?), skipped',
          at,
        }
      : { ok: false, kind: 'unreadable', message: `not JSON (${errorText(err)})`, at };
    return;
  }
  if (isRecord(value) && value['kind'] === 'EventList') {
    const items = value['items'];
    if (!Array.isArray(items)) {
      yield { ok: false, kind: 'unreadable', message: 'EventList has no items list', at };
      return;
    }
    for (const [item, event] of items.entries()) yield recordOf(event, { ...at, item });
    return;
  }
  yield recordOf(value, at);
}

function recordOf(value: unknown, at: LogPosition): LogRecord {
  if (validateEvent(value)) return { ok: true, event: value, at };
  const kind = isRecord(value) && typeof value['kind'] === 'string' ? ` (kind ${value['kind']})` : '';
  const error = validateEvent.errors?.[0];
  const detail =
    kind !== '' && isRecord(value) && value['kind'] !== 'Event'
      ? ''
      : error === undefined
        ? ''
        : error.keyword === 'required'
          ? `: ${String(error.params['missingProperty'])} is required`
          : `: ${error.instancePath.slice(1).replaceAll('/', '.') || 'event'} ${error.message ?? 'is invalid'}`;
  return {
    ok: false,
    kind: 'unreadable',
    message: `not an audit.k8s.io/v1 Event or EventList${kind}${detail}`,
    at,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // fs errors start with their code already (`ENOENT: no such file…`); zlib's do not.
  const code = 'code' in err ? String(err.code) : '';
  return code === '' || err.message.startsWith(code) ? err.message : `${code}: ${err.message}`;
  return String(err);
}

const GZIP_MAGIC = [0x1f, 0x8b];

/** The bytes of `raw`, gunzipped when they start with gzip's magic (a rotated `.gz`, or a pipe). */
async function* decompressed(raw: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  const iterator = raw[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done === true) return;
  const head = toBuffer(first.value);
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield toBuffer(next.value);
    }
  }
  if (head[0] !== GZIP_MAGIC[0] || head[1] !== GZIP_MAGIC[1]) {
    yield* all();
    return;
  }
  // pipeline destroys the gunzip stream with the source's error, so iterating it throws that error.
  const gunzip = createGunzip();
  pipeline(Readable.from(all()), gunzip, () => undefined);
  for await (const chunk of gunzip) yield toBuffer(chunk);
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('audit log stream yielded something other than bytes');
}

const TOO_LONG = Symbol('line too long');

/**
 * Splits bytes at `\n` (a `\r` before it is dropped). A line longer than `max` is returned as
 * TOO_LONG, its bytes not kept: reading resynchronises at the next newline.
 */
class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private overflowed = false;

  constructor(private readonly max: number) {}

  *push(chunk: Buffer): Generator<Buffer | typeof TOO_LONG> {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) {
        this.keep(chunk.subarray(start));
        return;
      }
      yield this.take(chunk.subarray(start, newline));
      start = newline + 1;
    }
  }

  /** What follows the last newline, if anything. */
  end(): Buffer | typeof TOO_LONG | undefined {
    if (this.overflowed) return TOO_LONG;
    if (this.pendingBytes === 0) return undefined;
    return this.take(Buffer.alloc(0));
  }

  private keep(part: Buffer): void {
    if (part.length === 0 || this.overflowed) return;
    this.pendingBytes += part.length;
    if (this.pendingBytes > this.max) {
      this.overflowed = true;
      this.pending = [];
      return;
    }
    this.pending.push(part);
  }

  private take(tail: Buffer): Buffer | typeof TOO_LONG {
    const overflowed = this.overflowed || this.pendingBytes + tail.length > this.max;
    const line = overflowed
      ? TOO_LONG
      : this.pending.length === 0
        ? tail
        : Buffer.concat([...this.pending, tail]);
    this.pending = [];
    this.pendingBytes = 0;
    this.overflowed = false;
    if (line === TOO_LONG) return line;
    return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
  }
}

/** The lines of a pretty-printed document, joined again, bounded like a line. */
class DocumentCollector {
  private readonly parts: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly max: number) {}

  add(piece: Buffer | typeof TOO_LONG): boolean {
    if (piece === TOO_LONG) return false;
    this.bytes += piece.length + 1;
    if (this.bytes > this.max) return false;
    this.parts.push(piece, NEWLINE);
    return true;
  }

  text(): string {
    return Buffer.concat(this.parts).toString('utf8');
  }
}

const NEWLINE = Buffer.from('\n');
