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

// A disk that stops taking writes must not grow the heap without end: past this much text not yet
// written, an event is dropped and counted.
const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;
/**
 * The most one write takes: dozens of event-loop turns' worth of events at 10,000 answers a second,
 * and small enough that SonicBoom's re-measuring of its pending chunk stays cheap if the disk lags.
 */
const MAX_WRITE_BYTES = 256 * 1024;

/**
 * JSON lines, one Event each, the format of the API server's log backend. Written through a pino
 * destination (SonicBoom): the default stdout sink shares the process logger's destination, so an
 * event line and a log line never interleave mid-line.
 *
 * The file sink batches: the lines of one event-loop turn (every request answered in it) go to the
 * destination as one string when the turn ends (setImmediate), not one write each. Handing SonicBoom
 * a line at a time cost ~6 µs per event on Node 20: it measures the UTF-8 length of its whole
 * pending chunk (up to 16 KB) again on every write, and starts an fs.write for the first line after
 * each completed one. Lines wait in memory either way (at most one turn longer than in SonicBoom's
 * own buffer), and close() hands over what is pending before it closes the file. The stdout
 * sink stays line by line: it is synchronous, and its lines must keep their place among log lines.
 */
export class JsonLinesSink implements AuditSink {
  readonly #destination: Destination;
  readonly #counters: AuditCounters;
  readonly #drops: DropLog;
  readonly #ownsDestination: boolean;
  readonly #batched: boolean;
  #destinationDropped = false;
  /** Batched lines not yet handed to the destination. */
  #pending: string[] = [];
  #flushScheduled: NodeJS.Immediate | undefined;
  /** Batched bytes not yet on disk: pending here, or handed over and not yet written by SonicBoom. */
  #unwritten = 0;
  #closing = false;

  constructor(
    readonly name: string,
    destination: Destination,
    counters: AuditCounters,
    logger: Logger,
    options: { ownsDestination: boolean; batch?: boolean },
  ) {
    this.#destination = destination;
    this.#counters = counters;
    this.#drops = new DropLog(logger, name);
    this.#ownsDestination = options.ownsDestination;
    this.#batched = options.batch === true;
    // SonicBoom emits `drop` inside write(), so write() can tell which event it was.
    destination.on('drop', () => {
      this.#destinationDropped = true;
    });
    destination.on('error', (err: unknown) => {
      logger.error({ sink: name, err }, 'audit destination failed');
    });
    if (this.#batched) {
      // Bytes SonicBoom got onto disk: what the buffer bound counts down, as SonicBoom's own does.
      destination.on('write', (bytes: number) => {
        this.#unwritten -= bytes;
      });
    }
  }

  /** A file sink, once the file is open: a path that cannot be written fails here, not later. */
  static async openFile(path: string, counters: AuditCounters, logger: Logger): Promise<JsonLinesSink> {
    // No maxLength here: the sink bounds its buffer itself (MAX_BUFFERED_BYTES, per event), so
    // SonicBoom never has to drop a whole batch. maxWrite: with SonicBoom's 16 KB default and one
    // write in flight, a busy process got ~16 KB onto disk per event-loop turn, about what 7,000
    // answers a second produce, so text queued for tens of milliseconds, lived through two
    // scavenges and was promoted: the old generation grew ~5 MB/s under load until a full GC.
    const destination = pino.destination({ dest: path, sync: false, mkdir: true, maxWrite: MAX_WRITE_BYTES });
    await once(destination, 'ready');
    return new JsonLinesSink('file', destination, counters, logger, { ownsDestination: true, batch: true });
  }

  write(event: AuditEvent): void {
    const line = `${JSON.stringify(event)}\n`;
    if (this.#batched) {
      this.#enqueue(line);
      return;
    }
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
    this.#drop(1, reason);
  }

  /** Takes a line for the batch, or drops it: the same bound, in the same bytes, as SonicBoom's maxLength. */
  #enqueue(line: string): void {
    if (this.#closing) {
      this.#drop(1, 'destination closed');
      return;
    }
    const bytes = Buffer.byteLength(line);
    if (this.#unwritten + bytes > MAX_BUFFERED_BYTES) {
      this.#drop(1, 'destination buffer full');
      return;
    }
    this.#unwritten += bytes;
    this.#pending.push(line);
    this.#flushScheduled ??= setImmediate(this.#flush);
  }

  /** Hands the batch over; its events count as written then (one metric update per batch). */
  readonly #flush = (): void => {
    this.#flushScheduled = undefined;
    const count = this.#pending.length;
    if (count === 0) return;
    const text = count === 1 ? (this.#pending[0] ?? '') : this.#pending.join('');
    this.#pending = [];
    try {
      this.#destination.write(text);
    } catch {
      // Not reached while the sink owns an open file: SonicBoom throws only once destroyed, and
      // close() flushes before it ends the destination. Should it happen, say so.
      this.#unwritten -= Buffer.byteLength(text);
      this.#drop(count, 'destination closed');
      return;
    }
    this.#counters.written(this.name, count);
  };

  #drop(count: number, reason: string): void {
    this.#counters.dropped(this.name, count);
    this.#drops.record(count, reason);
  }

  async close(): Promise<void> {
    if (this.#batched) {
      this.#closing = true;
      if (this.#flushScheduled !== undefined) clearImmediate(this.#flushScheduled);
      this.#flush();
    }
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
