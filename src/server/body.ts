// Request bodies, read from the socket with two bounds: each body at most `maxBytes` (the API
// server's 3 MiB objects, two in an UPDATE), and all bodies being received at once at most
// `budgetBytes` beyond a small allowance each. Without the second bound, forty connections that
// each send 8 MiB and never finish hold 320 MiB; with it, a body that would take the server past
// its budget is refused (429, connection closed) while small reviews — the API server's — still
// get their allowance and are answered. A body whose Content-Length says so is refused before a
// byte of it is read, and one that is taken holds its whole share from then on. Bodies that stall
// are dropped by the server's request timeout (server.ts), which closes the connection; the bytes
// they held are given back here.

import type { IncomingMessage } from 'node:http';
import { RequestError, parseJsonBody } from './json-body.js';

export interface BodyLimits {
  /** Largest body taken (413 beyond). */
  maxBytes: number;
  /** Bytes of all bodies being received at once, beyond each one's allowance (429 beyond). */
  budgetBytes: number;
  /** What every body may hold without drawing on the budget: a typical review fits in it. */
  allowanceBytes: number;
}

/** The bytes held by bodies being received, against the budget they share. */
export class BodyBudget {
  #held = 0;

  constructor(readonly limitBytes: number) {}

  get heldBytes(): number {
    return this.#held;
  }

  /** Takes `bytes` from the budget, or nothing when that would go over it. */
  take(bytes: number): boolean {
    if (this.#held + bytes > this.limitBytes) return false;
    this.#held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#held -= bytes;
  }
}

export const BODY_INCOMPLETE = 'PORTCULLIS_ERR_BODY_INCOMPLETE';

/**
 * Reads one JSON body and hands over what `parseJsonBody` makes of it, or the RequestError that
 * refuses it. The budget is held until the body is parsed, and given back whatever happens.
 */
export function readJsonBody(
  raw: IncomingMessage,
  limits: BodyLimits,
  budget: BodyBudget,
  done: (err: Error | null, body?: unknown) => void,
): void {
  const tooLarge = (): RequestError =>
    new RequestError(
      413,
      'PORTCULLIS_ERR_BODY_TOO_LARGE',
      `body is larger than the ${limits.maxBytes} bytes accepted`,
    );
  const overBudget = (): RequestError =>
    new RequestError(
      429,
      'PORTCULLIS_ERR_BODY_BUDGET',
      `the server is receiving more than the ${limits.budgetBytes} bytes of request bodies it holds at once; retry`,
    );
  // Node's parser has checked the header (digits only) and ends the body after that many bytes.
  const length = Number(raw.headers['content-length'] ?? Number.NaN);
  const declared = Number.isSafeInteger(length) ? length : undefined;
  // Refused before a byte is read: nothing is buffered for a body announced too large.
  if (declared !== undefined && declared > limits.maxBytes) {
    done(tooLarge());
    return;
  }
  // With a declared length (the API server always sends one) what the body will draw on the budget
  // is known now: taken whole, or refused before a byte is read. Taken only as bytes arrived, forty
  // 8 MiB bodies raced for the budget and most were refused halfway, leaving what they had read
  // (as much again as the budget) to a garbage collector that frees ArrayBuffers late: 25 MiB of
  // the peak RSS in test/server/robustness.test.ts. A chunked body is still counted as it arrives.
  let taken = 0;
  if (declared !== undefined) {
    const needed = Math.max(0, declared - limits.allowanceBytes);
    if (!budget.take(needed)) {
      done(overBudget());
      return;
    }
    taken = needed;
  }
  let chunks: Buffer[] = [];
  let received = 0;
  let finished = false;
  const finish = (err: Error | null, body?: unknown): void => {
    if (finished) return;
    finished = true;
    raw.off('data', onData);
    raw.off('end', onEnd);
    raw.off('close', onClose);
    chunks = [];
    budget.give(taken);
    taken = 0;
    done(err, body);
  };
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    if (received > limits.maxBytes) {
      finish(tooLarge());
      return;
    }
    const needed = Math.max(0, received - limits.allowanceBytes) - taken;
    if (needed > 0) {
      if (!budget.take(needed)) {
        finish(overBudget());
        return;
      }
      taken += needed;
    }
    // A chunk can be a slice of a larger buffer the socket read into: keeping the slice would
    // keep all of it, so what the budget counts is copied out unless it is the whole buffer.
    chunks.push(chunk.byteLength === chunk.buffer.byteLength ? chunk : Buffer.from(chunk));
  };
  const onEnd = (): void => {
    const text = Buffer.concat(chunks, received).toString('utf8');
    chunks = [];
    try {
      finish(null, parseJsonBody(text));
    } catch (err) {
      finish(err instanceof Error ? err : new Error(String(err)));
    }
  };
  // A connection closed mid-body: the client went away, or the request timeout closed it.
  const onClose = (): void => {
    finish(new RequestError(408, BODY_INCOMPLETE, 'the connection closed before the whole body arrived'));
  };
  raw.on('data', onData);
  raw.on('end', onEnd);
  raw.on('close', onClose);
}
