// The one path by which a rules source (a watched file, a watched ConfigMap) hands a new text to the
// server: parse it with `parseRuleSet`, then either a RuleSet to put in force or the errors that
// kept it out — never a broken RuleSet. The caller keeps the last good one; this only decides.
//
// Nothing is delivered twice for the same content: a poll that re-reads an unchanged file, a watch
// that replays the ConfigMap after a reconnect, or an edit that only touches comments or labels
// neither logs nor counts a load again. Nor is the same text parsed twice, good or refused: a
// refused text stays on disk until someone fixes it, and re-parsing it on every 5 s poll cost,
// for the same refusal, 0.3-0.5 s of event loop and 30 MiB of heap each time (an alias bomb under
// the size bound): probes late by a second, and peak RSS up by tens of MiB. A good text that
// follows a refused one is delivered even when its hash is the one already in force: the fix is
// news (it ends the failure), the hash is not.

import type { Logger } from 'pino';
import { parseRuleSet, type LoadedRuleSet, type RuleSetLoad } from './ruleset-source.js';

export interface RuleSetListener {
  /** A valid RuleSet to put in force. */
  onRuleSet(loaded: LoadedRuleSet): void;
  /** Why the new text was refused, each error naming origin, line and field; the last good stays. */
  onInvalid(errors: readonly string[]): void;
}

export type OfferResult =
  | { kind: 'loaded'; loaded: LoadedRuleSet }
  | { kind: 'invalid'; errors: readonly string[] }
  | { kind: 'unchanged' };

const UNCHANGED: OfferResult = { kind: 'unchanged' };

/** What was judged last: the text (when there was one) and what came of it. */
type Last =
  { ok: true; hash: string; text: string } | { ok: false; errors: string; text: string | undefined };

export class RuleSetGate {
  readonly #listener: RuleSetListener;
  readonly #log: Logger;
  readonly #parse: (text: string, origin: string) => RuleSetLoad;
  #last: Last | undefined;

  /** `parse` is parseRuleSet; a test passes it wrapped to count the parses. */
  constructor(listener: RuleSetListener, log: Logger, parse = parseRuleSet) {
    this.#listener = listener;
    this.#log = log;
    this.#parse = parse;
  }

  /** Judges a new text; `resourceVersion` names the ConfigMap version it came from. */
  offer(text: string, origin: string, resourceVersion?: string): OfferResult {
    const last = this.#last;
    // The same text judges the same way (parseRuleSet reads nothing else), so it is not parsed again.
    if (last?.text === text) return UNCHANGED;
    const load = this.#parse(text, origin);
    if (!load.ok) return this.#refuse(load.errors, text);
    const loaded: LoadedRuleSet =
      resourceVersion === undefined ? load.loaded : { ...load.loaded, resourceVersion };
    if (last?.ok === true && last.hash === loaded.hash) {
      this.#last = { ok: true, hash: loaded.hash, text };
      return UNCHANGED;
    }
    this.#last = { ok: true, hash: loaded.hash, text };
    this.#log.info(
      { origin, hash: loaded.hash, ...(resourceVersion === undefined ? {} : { resourceVersion }) },
      'RuleSet loaded',
    );
    this.#deliver(() => {
      this.#listener.onRuleSet(loaded);
    });
    return { kind: 'loaded', loaded };
  }

  /** For failures found before there is a text to parse: an unreadable file, a missing key. */
  refuse(errors: readonly string[]): OfferResult {
    return this.#refuse(errors, undefined);
  }

  #refuse(errors: readonly string[], text: string | undefined): OfferResult {
    const key = errors.join('\n');
    const repeated = this.#last?.ok === false && this.#last.errors === key;
    this.#last = { ok: false, errors: key, text };
    if (repeated) return UNCHANGED;
    this.#log.error({ errors }, 'RuleSet refused; the last good RuleSet stays in force');
    this.#deliver(() => {
      this.#listener.onInvalid(errors);
    });
    return { kind: 'invalid', errors };
  }

  // A listener that throws is a bug in the caller; it must not kill the watch that called it.
  #deliver(call: () => void): void {
    try {
      call();
    } catch (err) {
      this.#log.error({ err }, 'RuleSet listener threw');
    }
  }
}
