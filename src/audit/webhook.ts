// The audit webhook sink: POSTs `EventList` batches, as the API server's own audit webhook backend
// does, so the same collector can take both. Batched (size or wait, whichever comes first), one
// batch in flight at a time, retried with exponential backoff, bounded in memory. When the queue is
// full the newest event is dropped and counted: an admission answer never waits on the collector.

import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AuditEvent } from './event.js';
import { DropLog, type AuditCounters, type AuditSink } from './sink.js';

export interface WebhookSinkOptions {
  url: string;
  /** PEM CA bundle to verify an https collector with; otherwise the system roots (and NODE_EXTRA_CA_CERTS). */
  ca?: string;
  /** Events per POST; the API server's audit webhook uses 400. */
  batchSize?: number;
  /** How long a partial batch waits for more events. */
  maxWaitMs?: number;
  /** Events held while the collector is slow or down; past this, new events are dropped. */
  maxQueue?: number;
  /** Tries per batch, the first included, before the batch is dropped. */
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Per POST. */
  timeoutMs?: number;
  /** How long close() keeps sending before it drops what is left. */
  closeTimeoutMs?: number;
}

type Delivery = { ok: true } | { ok: false; retryable: boolean; reason: string };

export class WebhookSink implements AuditSink {
  readonly name = 'webhook';
  readonly #url: URL;
  readonly #agent: http.Agent;
  readonly #counters: AuditCounters;
  readonly #logger: Logger;
  readonly #drops: DropLog;
  readonly #options: Required<Omit<WebhookSinkOptions, 'url' | 'ca'>>;
  readonly #abort = new AbortController();
  #queue: AuditEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> | undefined;
  #closing = false;
  #closed = false;

  constructor(options: WebhookSinkOptions, counters: AuditCounters, logger: Logger) {
    this.#url = new URL(options.url);
    if (this.#url.protocol !== 'https:' && this.#url.protocol !== 'http:') {
      throw new Error(`audit webhook URL must be http or https, not ${this.#url.protocol}`);
    }
    this.#options = {
      batchSize: options.batchSize ?? 400,
      maxWaitMs: options.maxWaitMs ?? 1000,
      maxQueue: options.maxQueue ?? 10_000,
      maxAttempts: options.maxAttempts ?? 5,
      initialBackoffMs: options.initialBackoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      timeoutMs: options.timeoutMs ?? 10_000,
      closeTimeoutMs: options.closeTimeoutMs ?? 10_000,
    };
    this.#agent =
      this.#url.protocol === 'https:'
        ? new https.Agent({
            keepAlive: true,
            maxSockets: 1,
            ...(options.ca === undefined ? {} : { ca: options.ca }),
          })
        : new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.#counters = counters;
    this.#logger = logger;
    this.#drops = new DropLog(logger, this.name);
  }

  write(event: AuditEvent): void {
    if (this.#closed || this.#queue.length >= this.#options.maxQueue) {
      this.#counters.dropped(this.name, 1);
      this.#drops.record(1, this.#closed ? 'sink closed' : 'queue full');
      return;
    }
    this.#queue.push(event);
    this.#schedule();
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#timer);
    // Referenced on purpose: it keeps the process alive until the last batch is sent or given up.
    const deadline = setTimeout(() => {
      this.#abort.abort();
    }, this.#options.closeTimeoutMs);
    while (this.#sending !== undefined || this.#queue.length > 0) {
      if (this.#sending === undefined) this.#send();
      await this.#sending;
    }
    this.#closed = true;
    clearTimeout(deadline);
    this.#agent.destroy();
    this.#drops.flush();
  }

  #schedule(): void {
    if (this.#sending !== undefined) return; // the batch in flight schedules the next one
    if (this.#closing || this.#queue.length >= this.#options.batchSize) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#send();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#send();
      }, this.#options.maxWaitMs).unref();
    }
  }

  #send(): void {
    if (this.#sending !== undefined || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#options.batchSize);
    this.#sending = this.#deliver(batch).finally(() => {
      this.#sending = undefined;
      if (this.#queue.length > 0) this.#schedule();
    });
  }

  async #deliver(batch: AuditEvent[]): Promise<void> {
    const body = JSON.stringify({
      kind: 'EventList',
      apiVersion: 'audit.k8s.io/v1',
      metadata: {},
      items: batch,
    });
    for (let attempt = 1; ; attempt++) {
      const result = await this.#post(body);
      if (result.ok) {
        this.#counters.written(this.name, batch.length);
        return;
      }
      if (!result.retryable || attempt >= this.#options.maxAttempts || this.#abort.signal.aborted) {
        this.#counters.dropped(this.name, batch.length);
        this.#drops.record(batch.length, `${result.reason} after ${attempt} attempt(s)`);
        return;
      }
      this.#logger.debug(
        { sink: this.name, attempt, reason: result.reason },
        'audit webhook failed, retrying',
      );
      const backoff = Math.min(
        this.#options.initialBackoffMs * 2 ** (attempt - 1),
        this.#options.maxBackoffMs,
      );
      try {
        await sleep(backoff, undefined, { signal: this.#abort.signal, ref: false });
      } catch {
        // Aborted by close()'s deadline: the next attempt fails at once and the batch is counted.
      }
    }
  }

  #post(body: string): Promise<Delivery> {
    return new Promise((resolve) => {
      const request = (this.#url.protocol === 'https:' ? https : http).request(
        this.#url,
        {
          method: 'POST',
          agent: this.#agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: this.#options.timeoutMs,
          signal: this.#abort.signal,
        },
        (response) => {
          response.resume();
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve({ ok: true });
          else
            resolve({
              ok: false,
              retryable: status === 408 || status === 429 || status >= 500,
              reason: `HTTP ${status}`,
            });
        },
      );
      request.on('timeout', () => {
        request.destroy(new Error(`no answer in ${this.#options.timeoutMs} ms`));
      });
      request.on('error', (err) => {
        resolve({ ok: false, retryable: true, reason: err.message });
      });
      request.end(body);
    });
  }
}
