// The serving certificate, and the watch that swaps it when its files change (a rotated Secret,
// cert-manager renewing) so new connections get the new pair without a restart. A pair is only
// swapped in once the key matches the certificate: a Secret written file by file, or a file caught
// half-written, leaves the pair in force until the next change or poll completes it.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

export interface CertificatePair {
  /** PEM: the serving certificate, then any intermediates. */
  cert: string;
  /** PEM private key. */
  key: string;
}

export interface ServingCertificate extends CertificatePair {
  serialNumber: string;
  notAfter: Date;
}

export type PairCheck = { ok: true; certificate: ServingCertificate } | { ok: false; error: string };

export function checkPair(pair: CertificatePair): PairCheck {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pair.cert);
  } catch (err) {
    return { ok: false, error: `certificate does not parse (${errorMessage(err)})` };
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(pair.key)))
      return { ok: false, error: 'key does not match certificate' };
  } catch (err) {
    return { ok: false, error: `key does not parse (${errorMessage(err)})` };
  }
  return {
    ok: true,
    certificate: { ...pair, serialNumber: x509.serialNumber, notAfter: new Date(x509.validTo) },
  };
}

export interface CertificateFiles {
  cert: string;
  key: string;
}

export async function readPair(files: CertificateFiles): Promise<PairCheck> {
  const read = await readFiles(files);
  if (!read.ok) return read;
  const checked = checkPair(read.pair);
  return checked.ok ? checked : { ok: false, error: `${files.cert}, ${files.key}: ${checked.error}` };
}

async function readFiles(
  files: CertificateFiles,
): Promise<{ ok: true; pair: CertificatePair } | { ok: false; error: string }> {
  try {
    const [cert, key] = await Promise.all([readFile(files.cert, 'utf8'), readFile(files.key, 'utf8')]);
    return { ok: true, pair: { cert, key } };
  } catch (err) {
    return { ok: false, error: `cannot read (${errorMessage(err)})` };
  }
}

export interface WatchOptions {
  /** Quiet time after the last file event before the pair is read: a rotation touches several files. */
  debounceMs?: number;
  /** Re-read this often whatever the watch says: fs.watch misses events on some volumes. */
  pollMs?: number;
}

export class CertificateWatcher {
  readonly #files: CertificateFiles;
  readonly #onChange: (certificate: ServingCertificate) => void;
  readonly #logger: Logger;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  #current: ServingCertificate;
  #watchers: FSWatcher[] = [];
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #checkAgain = false;
  #lastRejected = '';

  constructor(
    files: CertificateFiles,
    current: ServingCertificate,
    onChange: (certificate: ServingCertificate) => void,
    logger: Logger,
    options: WatchOptions = {},
  ) {
    this.#files = files;
    this.#current = current;
    this.#onChange = onChange;
    this.#logger = logger;
    this.#debounceMs = options.debounceMs ?? 250;
    this.#pollMs = options.pollMs ?? 10_000;
  }

  get current(): ServingCertificate {
    return this.#current;
  }

  start(): void {
    // The directories, not the files: a Secret volume swaps a `..data` symlink and never writes
    // tls.crt in place, and an editor's rename leaves a file watch on the old inode.
    for (const dir of new Set([dirname(this.#files.cert), dirname(this.#files.key)])) {
      try {
        const watcher = watch(dir, { persistent: false }, () => {
          this.#changed();
        });
        watcher.on('error', (err) => {
          this.#logger.warn({ dir, err }, 'certificate directory watch failed; polling only');
          watcher.close();
        });
        this.#watchers.push(watcher);
      } catch (err) {
        this.#logger.warn({ dir, err }, 'cannot watch certificate directory; polling only');
      }
    }
    this.#poll = setInterval(() => void this.check(), this.#pollMs).unref();
  }

  close(): void {
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }

  /** Reads the files and swaps the pair in if it changed and is whole. Never two reads at once. */
  check(): Promise<void> {
    if (this.#checking !== undefined) {
      this.#checkAgain = true;
      return this.#checking;
    }
    this.#checking = this.#read().finally(() => {
      this.#checking = undefined;
      if (this.#checkAgain) {
        this.#checkAgain = false;
        void this.check();
      }
    });
    return this.#checking;
  }

  #changed(): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.check(), this.#debounceMs).unref();
  }

  async #read(): Promise<void> {
    const files = await readFiles(this.#files);
    // Most polls find the pair in use: no need to parse a key to learn that.
    if (files.ok && files.pair.cert === this.#current.cert && files.pair.key === this.#current.key) {
      this.#lastRejected = '';
      return;
    }
    const read = files.ok ? checkPair(files.pair) : files;
    if (!read.ok) {
      // Logged once per distinct state, not once per poll, until the files change.
      if (read.error !== this.#lastRejected) {
        this.#lastRejected = read.error;
        this.#logger.warn(
          { reason: read.error, serialNumber: this.#current.serialNumber },
          'certificate files not usable yet; keeping the pair in use',
        );
      }
      return;
    }
    this.#lastRejected = '';
    const next = read.certificate;
    this.#current = next;
    this.#onChange(next);
    this.#logger.info(
      { serialNumber: next.serialNumber, notAfter: next.notAfter.toISOString() },
      'serving certificate rotated',
    );
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string')
    return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
