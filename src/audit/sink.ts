// Where audit events go. Every sink takes an event without waiting (an admission answer never waits
// on a disk or a network) and keeps count of what it wrote and what it had to drop, so a loss is
// always visible in /metrics.

import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { finished } from 'node:stream/promises';
import pino from 'pino';
import type { Logger } from 'pino';
import type { AuditEvent } from './event.js';

export interface AuditSink {
  /** The `sink` label in metrics: `stdout`, `file`, `webhook`. */
  readonly name: string;
  /** Takes the event over; never throws, never blocks. */
  write(event: AuditEvent): void;
  /** Writes or sends what is still buffered, then lets go of the destination. */
  close(): Promise<void>;
}

/** How sinks report, kept apart from prom-client so the audit code does not depend on it. */
export interface AuditCounters {
  written(sink: string, count: number): void;
  dropped(sink: string, count: number): void;
}

export type Destination = ReturnType<typeof pino.destination>;

// A disk that stops taking writes must not grow the heap without end: past this much text not yet
// written, an event is dropped and counted.
const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;
/** The longest a line waits in the file sink's memory before it is handed to the file. */
export const FLUSH_INTERVAL_MS = 10;
/** Handed to the file at the end of the event-loop turn instead, once this much is waiting. */
const FLUSH_BYTES = 256 * 1024;

/**
 * JSON lines, one Event each, the format of the API server's log backend, written synchronously
 * through a pino destination (SonicBoom): the default stdout sink shares the process logger's
 * destination, so an event line and a log line never interleave mid-line and keep their order.
 */
export class JsonLinesSink implements AuditSink {
  readonly #destination: Destination;
  readonly #counters: AuditCounters;
  readonly #drops: DropLog;
  readonly #ownsDestination: boolean;
  #destinationDropped = false;

  constructor(
    readonly name: string,
    destination: Destination,
    counters: AuditCounters,
    logger: Logger,
    options: { ownsDestination: boolean },
  ) {
    this.#destination = destination;
    this.#counters = counters;
    this.#drops = new DropLog(logger, name);
    this.#ownsDestination = options.ownsDestination;
    // SonicBoom emits `drop` inside write(), so write() can tell which event it was.
    destination.on('drop', () => {
      this.#destinationDropped = true;
    });
    destination.on('error', (err: unknown) => {
      logger.error({ sink: name, err }, 'audit destination failed');
    });
  }

  /** The `--audit-log` sink, once the file is open: a path that cannot be written fails here, not later. */
  static openFile(path: string, counters: AuditCounters, logger: Logger): Promise<AuditSink> {
    return FileSink.open(path, counters, logger);
  }

  write(event: AuditEvent): void {
    const line = `${JSON.stringify(event)}\n`;
    this.#destinationDropped = false;
    let reason: string | undefined;
    try {
      this.#destination.write(line);
      if (this.#destinationDropped) reason = 'destination buffer full';
    } catch {
      // Only a destroyed destination throws: after an I/O error (logged), or a write after close().
      reason = 'destination closed';
    }
    if (reason === undefined) {
      this.#counters.written(this.name, 1);
      return;
    }
    this.#counters.dropped(this.name, 1);
    this.#drops.record(1, reason);
  }

  async close(): Promise<void> {
    this.#drops.flush();
    if (!this.#ownsDestination) {
      await new Promise<void>((resolve) => {
        this.#destination.flush(() => {
          resolve();
        });
      });
      return;
    }
    const closed = once(this.#destination, 'close');
    this.#destination.end();
    await closed;
  }
}

/**
 * JSON lines to a file, in batches: lines wait in memory for at most FLUSH_INTERVAL_MS (or to the
 * end of the event-loop turn once FLUSH_BYTES are waiting) and go to the file as one write.
 *
 * Why batches, and why Node's own fs.WriteStream. Every write is an fs.write on libuv's thread
 * pool, and its round trip (a thread woken, the syscall, the completion back on the event loop)
 * costs tens of µs of CPU on a busy 2-core machine whatever its size: flushed once per event-loop
 * turn, as this sink did before, a loaded server wrote a few events per write and paid 10–20 µs of
 * it per answer; per 10 ms window, tens of events share one. And a batch is UTF-8 encoded once,
 * when it is handed over: SonicBoom, which this sink wrote through before, measures a string batch
 * when it takes it, fs.write encodes it, and SonicBoom encodes it once more when the write
 * completes (to cut what was written off its buffer), three passes over every byte (its buffer
 * mode avoids that but is typed for strings only). A line reaches the disk at most 10 ms later than
 * it would have (it was in memory either way); close() hands over what is pending, then waits
 * until it is written. The bound below counts every byte not yet on disk, here or in the stream.
 */
class FileSink implements AuditSink {
  readonly name = 'file';
  readonly #stream: WriteStream;
  readonly #counters: AuditCounters;
  readonly #drops: DropLog;
  /** Lines not yet handed to the stream, and their UTF-8 size. */
  #pending: string[] = [];
  #pendingBytes = 0;
  /** Set while lines are pending and FLUSH_INTERVAL_MS has not passed. */
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #closing = false;

  private constructor(stream: WriteStream, counters: AuditCounters, logger: Logger) {
    this.#stream = stream;
    this.#counters = counters;
    this.#drops = new DropLog(logger, this.name);
    stream.on('error', (err: unknown) => {
      logger.error({ sink: this.name, err }, 'audit destination failed');
    });
  }

  static async open(path: string, counters: AuditCounters, logger: Logger): Promise<FileSink> {
    await mkdir(dirname(path), { recursive: true });
    const stream = createWriteStream(path, { flags: 'a' });
    await once(stream, 'ready');
    return new FileSink(stream, counters, logger);
  }

  write(event: AuditEvent): void {
    const line = `${JSON.stringify(event)}\n`;
    if (this.#closing || this.#stream.destroyed) {
      this.#drop(1, 'destination closed');
      return;
    }
    const bytes = Buffer.byteLength(line);
    if (this.#pendingBytes + this.#stream.writableLength + bytes > MAX_BUFFERED_BYTES) {
      this.#drop(1, 'destination buffer full');
      return;
    }
    this.#pending.push(line);
    this.#pendingBytes += bytes;
    if (this.#pendingBytes >= FLUSH_BYTES) {
      this.#immediate ??= setImmediate(this.#flush);
    } else {
      // A new timer per window: a cleared one cannot be re-armed (refresh() then does nothing).
      this.#timer ??= setTimeout(this.#flush, FLUSH_INTERVAL_MS);
    }
  }

  /** Hands the batch over; its events count as written then (one metric update per batch). */
  readonly #flush = (): void => {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    const count = this.#pending.length;
    if (count === 0) return;
    const text = count === 1 ? (this.#pending[0] ?? '') : this.#pending.join('');
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#stream.destroyed) {
      // After an I/O error (logged): the stream takes nothing more.
      this.#drop(count, 'destination closed');
      return;
    }
    this.#stream.write(Buffer.from(text));
    this.#counters.written(this.name, count);
  };

  #drop(count: number, reason: string): void {
    this.#counters.dropped(this.name, count);
    this.#drops.record(count, reason);
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#flush();
    this.#drops.flush();
    this.#stream.end();
    // An I/O error is logged by the listener above; close() still completes.
    await finished(this.#stream).catch(() => undefined);
  }
}

/**
 * Logs drops at most once per interval, with the count since the last line: a sink that is stuck
 * must not flood the log as well. The metrics have every drop; the log says when and why.
 */
export class DropLog {
  #pending = 0;
  #reason = '';
  #lastLogged = -Infinity;

  constructor(
    private readonly logger: Logger,
    private readonly sink: string,
    private readonly intervalMs = 10_000,
  ) {}

  record(count: number, reason: string): void {
    this.#pending += count;
    this.#reason = reason;
    const now = Date.now();
    if (now - this.#lastLogged >= this.intervalMs) {
      this.#lastLogged = now;
      this.flush();
    }
  }

  /** Logs what has not been logged yet. */
  flush(): void {
    if (this.#pending === 0) return;
    this.logger.warn(
      { sink: this.sink, dropped: this.#pending, reason: this.#reason },
      'audit events dropped',
    );
    this.#pending = 0;
  }
}
