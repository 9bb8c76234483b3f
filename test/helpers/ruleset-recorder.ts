// Records what a rules watcher hands its caller, in order, with the time it arrived, and lets a
// test wait for the next one.

import { performance } from 'node:perf_hooks';
import type { LoadedRuleSet } from '../../src/config/ruleset-source.js';
import { KNOWN_CHECKS } from './rules.js';

export type Delivery =
  | { kind: 'ruleset'; loaded: LoadedRuleSet; at: number }
  | { kind: 'invalid'; errors: readonly string[]; at: number };

export class Recorder {
  readonly #queue: Delivery[] = [];
  #wake: (() => void) | undefined;

  readonly onRuleSet = (loaded: LoadedRuleSet): void => {
    this.#push({ kind: 'ruleset', loaded, at: performance.now() });
  };

  readonly onInvalid = (errors: readonly string[]): void => {
    this.#push({ kind: 'invalid', errors, at: performance.now() });
  };

  #push(d: Delivery): void {
    this.#queue.push(d);
    this.#wake?.();
  }

  /** The next delivery, or a rejection after `timeoutMs`. */
  async next(timeoutMs = 5_000): Promise<Delivery> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const d = this.#queue.shift();
      if (d !== undefined) return d;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no RuleSet delivery within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Waits `ms` and returns what arrived meanwhile (for "nothing happens" assertions). */
  async during(ms: number): Promise<Delivery[]> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.#queue.splice(0);
  }
}

/** A valid RuleSet whose content (hence hash) depends on `team`. */
export function rulesText(team: string, comment = ''): string {
  return `# ${comment}
apiVersion: portcullis.io/v1
kind: RuleSet
rules:
  - name: no-privileged
    check: privileged
  - name: trusted-registries
    check: trustedRegistries
    params:
      registries: [registry.k8s.io, ghcr.io/${team}]
`;
}

/** The same RuleSet with a misspelt check on line 9. */
export function brokenRulesText(): string {
  return `apiVersion: portcullis.io/v1
kind: RuleSet
rules:
  - name: no-privileged
    check: privileged
  - name: trusted-registries
    params:
      registries: [registry.k8s.io]
    check: trustedRegistrys
`;
}

export const BROKEN_RULES_ERROR = `rules[1].check: unknown check "trustedRegistrys"; ${KNOWN_CHECKS}`;
