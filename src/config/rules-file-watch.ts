// `serve --rules PATH`: keeps the RuleSet in force in step with a file, or with a directory holding
// `rules.yaml` — in particular a ConfigMap volume as the kubelet projects it:
//
//   /etc/portcullis/..2026_11_23_10_00_00.123/rules.yaml   the content, in a timestamped directory
//   /etc/portcullis/..data -> ..2026_11_23_10_00_00.123    swapped atomically by rename(2)
//   /etc/portcullis/rules.yaml -> ..data/rules.yaml        never changes
//
// An update writes a new timestamped directory, points `..data_tmp` at it, renames that over
// `..data` and deletes the old directory. The file the path names is never written to, and its
// inode is gone after the swap, so the *directory* is watched and every event in it (whatever its
// name: `..data`, `..data_tmp`, an editor's swap file) leads to one debounced re-read through the
// path. fs.watch does not fire on every file system (NFS, some FUSE and overlay mounts), and a
// watched directory can itself be replaced, so a slow poll re-reads too and re-arms the watch.

import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { RuleSetGate, type RuleSetListener } from './ruleset-reload.js';
import { readRuleSetFile } from './ruleset-source.js';

/** The key a directory (a mounted ConfigMap) holds the RuleSet under. */
export const RULES_FILE_NAME = 'rules.yaml';

export interface RulesFileWatchOptions extends RuleSetListener {
  /** A RuleSet file, or a directory holding `rules.yaml`. */
  path: string;
  log: Logger;
  /** Quiet time after the last event before re-reading: an in-place write can take several. */
  debounceMs?: number;
  /** Re-read this often even without events. */
  pollIntervalMs?: number;
  /** Off: poll only, as on a file system where fs.watch never fires. */
  fsWatch?: boolean;
}

export interface RulesWatch {
  /** Stops watching; a re-read in progress finishes first, and no callback follows. */
  stop(): Promise<void>;
}

const DEFAULT_DEBOUNCE_MS = 100;
const DEFAULT_POLL_INTERVAL_MS = 5_000;

/**
 * Reads the RuleSet once (delivering it, or its errors, before this resolves), then follows every
 * change. A path that does not exist yet is an invalid RuleSet now, and is picked up once it does.
 */
export async function watchRulesFile(options: RulesFileWatchOptions): Promise<RulesWatch> {
  const { file, dir } = await locate(options.path);
  const watcher = new RulesFileWatcher(file, dir, options);
  await watcher.start();
  return watcher;
}

async function locate(path: string): Promise<{ file: string; dir: string }> {
  try {
    if ((await stat(path)).isDirectory()) return { file: join(path, RULES_FILE_NAME), dir: path };
  } catch {
    // Not there (yet): a file path, judged unreadable by the first read.
  }
  return { file: path, dir: dirname(path) };
}

class RulesFileWatcher implements RulesWatch {
  readonly #file: string;
  readonly #dir: string;
  readonly #log: Logger;
  readonly #gate: RuleSetGate;
  readonly #debounceMs: number;
  readonly #pollIntervalMs: number;
  readonly #useFsWatch: boolean;
  #watcher: FSWatcher | undefined;
  /** Inode of the directory the watcher is on: when the path names another one, re-arm. */
  #watchedIno: number | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(file: string, dir: string, options: RulesFileWatchOptions) {
    this.#file = file;
    this.#dir = dir;
    this.#log = options.log.child({ rules: file });
    this.#gate = new RuleSetGate(options, this.#log);
    this.#debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.#pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.#useFsWatch = options.fsWatch ?? true;
  }

  async start(): Promise<void> {
    await this.#run();
    // Unref'd: watching the rules must never be what keeps the process alive.
    this.#poll = setInterval(() => void this.#run(), this.#pollIntervalMs).unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#poll);
    this.#unwatch();
    await this.#running;
  }

  /** One re-read at a time; events during a re-read earn exactly one more. */
  #run(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#loop();
    return this.#running;
  }

  async #loop(): Promise<void> {
    try {
      do {
        this.#again = false;
        await this.#reload();
        await this.#arm();
      } while (this.#again && !this.#stopped);
    } finally {
      // Cleared in the same turn as the last `#again` check, so no event falls between the two.
      this.#running = undefined;
    }
  }

  async #reload(): Promise<void> {
    const read = await readRuleSetFile(this.#file);
    if (this.#stopped) return;
    if (read.ok) this.#gate.offer(read.text, this.#file);
    else this.#gate.refuse([read.error]);
  }

  /** (Re-)arms fs.watch on the directory the path names now. */
  async #arm(): Promise<void> {
    if (!this.#useFsWatch || this.#stopped) return;
    let ino: number;
    try {
      ino = (await stat(this.#dir)).ino;
    } catch {
      this.#unwatch(); // the directory is gone: the poll looks again
      return;
    }
    if (this.#watcher !== undefined && ino === this.#watchedIno) return;
    this.#unwatch();
    if (this.#stopped) return;
    try {
      const watcher = watch(this.#dir, { persistent: false }, () => {
        this.#schedule();
      });
      watcher.on('error', (err) => {
        this.#log.warn({ err, dir: this.#dir }, 'rules directory watch failed; polling until it is back');
        if (this.#watcher === watcher) this.#unwatch();
      });
      this.#watcher = watcher;
      this.#watchedIno = ino;
    } catch (err) {
      this.#log.warn({ err, dir: this.#dir }, 'cannot watch the rules directory; polling only');
    }
  }

  #unwatch(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#watchedIno = undefined;
  }

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.#run(), this.#debounceMs).unref();
  }
}
