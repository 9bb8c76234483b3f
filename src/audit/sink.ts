// Where audit events go. Every sink takes an event without waiting (an admission answer never waits
// on a disk or a network) and keeps count of what it wrote and what it had to drop, so a loss is
// always visible in /metrics.

import { once } from 'node:events';
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

// A disk that stops taking writes must not grow the heap without end: past this much buffered text
// SonicBoom drops the write and says so.
const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

/**
 * JSON lines, one Event each, the format of the API server's log backend. Written through a pino
 * destination (SonicBoom): the default stdout sink shares the process logger's destination, so an
 * event line and a log line never interleave mid-line.
 */
export class JsonLinesSink implements AuditSink {
  readonly #destination: Destination;
  readonly #counters: AuditCounters;
  readonly #drops: DropLog;
  readonly #ownsDestination: boolean;
  #dropped = false;

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
      this.#dropped = true;
    });
    destination.on('error', (err: unknown) => {
      logger.error({ sink: name, err }, 'audit destination failed');
    });
  }

  /** A file sink, once the file is open: a path that cannot be written fails here, not later. */
  static async openFile(path: string, counters: AuditCounters, logger: Logger): Promise<JsonLinesSink> {
    const destination = pino.destination({
      dest: path,
      sync: false,
      mkdir: true,
      maxLength: MAX_BUFFERED_BYTES,
    });
    await once(destination, 'ready');
    return new JsonLinesSink('file', destination, counters, logger, { ownsDestination: true });
  }

  write(event: AuditEvent): void {
    this.#dropped = false;
    let reason: string | undefined;
    try {
      this.#destination.write(`${JSON.stringify(event)}\n`);
      if (this.#dropped) reason = 'destination buffer full';
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
