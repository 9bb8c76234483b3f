// A real pino logger writing into memory, so tests read what would have been logged (the STYLE way:
// through a destination stream, not a mocked logger).

import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { isObject } from '../../src/core/index.js';

export interface CapturedLog {
  log: Logger;
  /** Every line logged so far, parsed. */
  lines(): Record<string, unknown>[];
}

export function captureLog(): CapturedLog {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const log = pino({ level: 'debug' }, stream);
  return {
    log,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l): unknown => JSON.parse(l))
        .filter(isObject),
  };
}
