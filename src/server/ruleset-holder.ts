// The RuleSet in force. Every admission request reads `current` once, so a swap never splits one
// request between two RuleSets. Whatever loads RuleSets (the --rules file at start, a file or
// ConfigMap watcher) hands a valid one to `setRuleSet` and reports an invalid one to `onInvalid`,
// which only counts it: the RuleSet in force stays. The method names fit a RuleSetGate listener.

import type { LoadedRuleSet } from '../config/ruleset-source.js';
import type { Metrics } from './metrics.js';

type HolderMetrics = Pick<
  Metrics,
  'rulesetLoads' | 'rulesetInfo' | 'rulesetLastLoadSuccess' | 'exceptionExpiry' | 'countExceptionsOf'
>;

export class RuleSetHolder {
  #current: LoadedRuleSet | undefined;
  readonly #metrics: HolderMetrics;

  /** Without `initial` the server is not ready, and denies everything, until a RuleSet is set. */
  constructor(metrics: HolderMetrics, initial?: LoadedRuleSet) {
    this.#metrics = metrics;
    metrics.countExceptionsOf(() => this.#current?.ruleset.exceptions ?? []);
    if (initial !== undefined) this.setRuleSet(initial);
  }

  get current(): LoadedRuleSet | undefined {
    return this.#current;
  }

  setRuleSet(loaded: LoadedRuleSet): void {
    this.#current = loaded;
    this.#record(loaded);
  }

  readonly onRuleSet = (loaded: LoadedRuleSet): void => {
    this.setRuleSet(loaded);
  };

  readonly onInvalid = (): void => {
    this.#metrics.rulesetLoads.inc({ result: 'failure' });
    this.#metrics.rulesetLastLoadSuccess.set(0);
  };

  #record(loaded: LoadedRuleSet): void {
    this.#metrics.rulesetLoads.inc({ result: 'success' });
    this.#metrics.rulesetLastLoadSuccess.set(1);
    this.#metrics.rulesetInfo.reset();
    this.#metrics.rulesetInfo.set({ hash: loaded.hash }, 1);
    this.#metrics.exceptionExpiry.reset();
    for (const exception of loaded.ruleset.exceptions) {
      this.#metrics.exceptionExpiry.set({ exception: exception.name }, exception.expires.getTime() / 1000);
    }
  }
}
