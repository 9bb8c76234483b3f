// `serve --rules-configmap NAMESPACE/NAME`: keeps the RuleSet in force in step with the ConfigMap's
// `rules.yaml` through the API server — list, then watch, so a change is enforced as soon as the
// API server sends the watch event (milliseconds after it accepted the write), with no kubelet sync
// delay (up to a minute or more for a mounted volume).
//
// @kubernetes/client-node 1.4's ListWatch does the list+watch: `makeInformer` takes no field
// selector, and one ConfigMap is all Portcullis may read (RBAC can grant list/watch on just that
// name when the request selects `metadata.name=NAME`). ListWatch relists by itself on `410 Gone`;
// any other error ends it for good, so this restarts it with capped, jittered exponential backoff,
// reusing it so it resumes from the last resourceVersion and its cache still notices a deletion.
//
// A refused RuleSet is also posted as a core/v1 Event on the ConfigMap (reason InvalidRuleSet), so
// `kubectl describe configmap` shows why the edit did not take. Posting is best effort.

import { hostname } from 'node:os';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  Watch,
  type CoreV1Event,
  type KubernetesObject,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { configMapOrigin, rulesTextOf, type ConfigMapRef } from './rules-configmap.js';
import type { RulesWatch } from './rules-file-watch.js';
import { RuleSetGate, type RuleSetListener } from './ruleset-reload.js';

export const EVENT_REASON = 'InvalidRuleSet';
export const REPORTING_COMPONENT = 'portcullis';
/** The API server accepts longer Event messages, but a wall of text helps no one in `describe`. */
export const EVENT_MESSAGE_MAX_BYTES = 1024;

export interface Backoff {
  /** First retry delay (before jitter). */
  initialMs: number;
  /** Cap on the delay. */
  maxMs: number;
  /** A watch that stayed up this long before failing starts again from `initialMs`. */
  resetAfterMs: number;
}

/**
 * A client-node model (`V1ConfigMap`, `CoreV1Event`, …) as the plain data it is: the models are
 * data-only classes that the client serializes field by field, and they are written as literals.
 */
export type Plain<T> = T extends Date
  ? T
  : T extends readonly (infer E)[]
    ? Plain<E>[]
    : T extends object
      ? { [K in keyof T]: Plain<T[K]> }
      : T;

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000 };

export interface RulesConfigMapWatchOptions extends RuleSetListener {
  ref: ConfigMapRef;
  kubeConfig: KubeConfig;
  log: Logger;
  backoff?: Partial<Backoff>;
  /** `reportingInstance` of posted Events; the pod name (the hostname) by default. */
  instance?: string;
}

/**
 * The cluster's credentials: `--kubeconfig FILE` when given; inside a pod its service account (the
 * usual case, and it must win over a stray KUBECONFIG in the image); otherwise kubectl's defaults.
 */
export function loadKubeConfig(kubeconfigPath: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (kubeconfigPath !== undefined) kubeConfig.loadFromFile(kubeconfigPath);
  else if (process.env['KUBERNETES_SERVICE_HOST'] !== undefined) kubeConfig.loadFromCluster();
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}

/** Starts watching at once; the first list delivers the RuleSet (or its errors) to the listener. */
export function watchRulesConfigMap(options: RulesConfigMapWatchOptions): RulesWatch {
  const watcher = new RulesConfigMapWatcher(options);
  watcher.start();
  return watcher;
}

class RulesConfigMapWatcher implements RulesWatch {
  readonly #ref: ConfigMapRef;
  readonly #origin: string;
  readonly #log: Logger;
  readonly #gate: RuleSetGate;
  readonly #api: CoreV1Api;
  readonly #watch: RestartingListWatch<V1ConfigMap>;
  readonly #instance: string;
  /** Whether the last list found the ConfigMap, so its absence is logged once, not on every relist. */
  #found: boolean | undefined;

  constructor(options: RulesConfigMapWatchOptions) {
    const { ref, kubeConfig } = options;
    this.#ref = ref;
    this.#origin = configMapOrigin(ref);
    this.#log = options.log.child({ rulesConfigMap: `${ref.namespace}/${ref.name}` });
    this.#gate = new RuleSetGate(options, this.#log);
    this.#api = kubeConfig.makeApiClient(CoreV1Api);
    this.#instance = options.instance ?? hostname();
    const fieldSelector = `metadata.name=${ref.name}`;
    const informer = new ListWatch<V1ConfigMap>(
      `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/configmaps`,
      new Watch(kubeConfig),
      async () => {
        const list = await this.#api.listNamespacedConfigMap({ namespace: ref.namespace, fieldSelector });
        this.#listed(list.items);
        return list;
      },
      false,
      undefined,
      fieldSelector,
    );
    informer.on('add', (cm) => {
      this.#changed(cm);
    });
    informer.on('update', (cm) => {
      this.#changed(cm);
    });
    informer.on('delete', (cm) => {
      if (!this.#watch.stopped) {
        this.#log.warn(
          { resourceVersion: cm.metadata?.resourceVersion },
          'rules ConfigMap deleted; the last good RuleSet stays in force',
        );
      }
    });
    this.#watch = new RestartingListWatch(informer, {
      log: this.#log,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      failureMessage: 'rules ConfigMap watch failed; restarting it',
    });
  }

  start(): void {
    this.#watch.start();
  }

  stop(): Promise<void> {
    return this.#watch.stop();
  }

  #listed(items: readonly V1ConfigMap[]): void {
    const found = items.some((cm) => cm.metadata?.name === this.#ref.name);
    if (!found && this.#found !== false) {
      this.#log.warn(
        {},
        'rules ConfigMap not found; the last good RuleSet (if any) stays in force until it is created',
      );
    }
    this.#found = found;
  }

  #changed(configMap: V1ConfigMap): void {
    if (this.#watch.stopped) return;
    const metadata = configMap.metadata;
    if (metadata?.name !== this.#ref.name || metadata.namespace !== this.#ref.namespace) return;
    this.#found = true;
    const text = rulesTextOf(configMap, this.#ref);
    const result = text.ok
      ? this.#gate.offer(text.text, this.#origin, metadata.resourceVersion)
      : this.#gate.refuse([text.error]);
    if (result.kind === 'invalid') void this.#postEvent(configMap, result.errors);
  }

  async #postEvent(configMap: V1ConfigMap, errors: readonly string[]): Promise<void> {
    const body = invalidRuleSetEvent(configMap, errors, new Date(), this.#instance);
    try {
      await this.#api.createNamespacedEvent({ namespace: this.#ref.namespace, body });
    } catch (err) {
      this.#log.warn({ error: describeError(err) }, 'could not post the InvalidRuleSet Event');
    }
  }
}

export interface RestartOptions {
  log: Logger;
  backoff: Backoff;
  /** Logged (warn) with the error, the attempt and the delay each time the watch ends. */
  failureMessage: string;
  /** Told each failure, described, before the restart is scheduled. */
  onFailure?: (error: string) => void;
}

/**
 * A ListWatch kept running until stop(): every error that ends it schedules a start again after
 * retryDelay (a watch that stayed up `resetAfterMs` starts again from `initialMs`), on the same
 * ListWatch, so it resumes from its last resourceVersion and its cache still sees a deletion.
 * The rules ConfigMap watch and the ClusterRoles watch both run on one.
 */
export class RestartingListWatch<T extends KubernetesObject> {
  readonly #informer: ListWatch<T>;
  readonly #options: RestartOptions;
  #attempt = 0;
  #startedAt = 0;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(informer: ListWatch<T>, options: RestartOptions) {
    this.#informer = informer;
    this.#options = options;
    informer.on('error', (err: unknown) => {
      this.#failed(err);
    });
  }

  /** Once stop() was called: events that arrive after it are to be ignored. */
  get stopped(): boolean {
    return this.#stopped;
  }

  start(): void {
    if (this.#stopped) return;
    this.#startedAt = Date.now();
    this.#informer.start().then(
      () => {
        // ListWatch checks its stop flag before listing, not after: a stop() that lands during
        // the list leaves a watch running. Stopping again aborts it.
        if (this.#stopped) void this.#informer.stop();
      },
      (err: unknown) => {
        this.#failed(err);
      },
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    // Aborting the watch makes ListWatch report an `error`: #failed ignores it once stopped.
    await this.#informer.stop();
  }

  #failed(err: unknown): void {
    if (this.#stopped) return;
    clearTimeout(this.#retry);
    const { backoff } = this.#options;
    if (Date.now() - this.#startedAt >= backoff.resetAfterMs) this.#attempt = 0;
    const delayMs = retryDelay(this.#attempt, backoff, Math.random);
    this.#attempt += 1;
    const error = describeError(err);
    this.#options.onFailure?.(error);
    this.#options.log.warn(
      { error, attempt: this.#attempt, retryInMs: Math.round(delayMs) },
      this.#options.failureMessage,
    );
    this.#retry = setTimeout(() => {
      this.start();
    }, delayMs);
  }
}

/** Exponential from `initialMs`, capped at `maxMs`, drawn from its upper half so replicas spread. */
export function retryDelay(attempt: number, backoff: Backoff, random: () => number): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + (random() * ceiling) / 2;
}

/** A core/v1 Event on the ConfigMap, as client-go's recorder writes one (name = object name + time). */
export function invalidRuleSetEvent(
  configMap: Plain<V1ConfigMap>,
  errors: readonly string[],
  now: Date,
  instance: string,
): Plain<CoreV1Event> {
  const metadata = configMap.metadata ?? {};
  const name = metadata.name ?? 'unknown';
  const nanos = BigInt(now.getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${name}.${nanos.toString(16)}`, namespace: metadata.namespace },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: metadata.namespace,
      name,
      uid: metadata.uid,
      resourceVersion: metadata.resourceVersion,
    },
    type: 'Warning',
    reason: EVENT_REASON,
    action: 'LoadRuleSet',
    // One line: `kubectl describe` prints an Event's message in a table cell.
    message: truncateUtf8(errors.join('; '), EVENT_MESSAGE_MAX_BYTES),
    source: { component: REPORTING_COMPONENT, host: instance },
    reportingComponent: REPORTING_COMPONENT,
    reportingInstance: instance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

/** At most `maxBytes` of UTF-8, cut at a character boundary, ending in `…` when cut. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const ellipsis = '…';
  let budget = maxBytes - Buffer.byteLength(ellipsis, 'utf8');
  let out = '';
  for (const char of text) {
    budget -= Buffer.byteLength(char, 'utf8');
    if (budget < 0) break;
    out += char;
  }
  return out + ellipsis;
}

/** One line for the log: the API's own message when there is one, not a response dump. */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const message = statusMessage(err.body);
    return `HTTP ${err.code}${message === '' ? '' : `: ${message}`}`;
  }
  if (err instanceof Error) {
    const status =
      'statusCode' in err && typeof err.statusCode === 'number' ? `HTTP ${err.statusCode}: ` : '';
    const code = 'code' in err && typeof err.code === 'string' ? ` (${err.code})` : '';
    return `${status}${err.message}${code}`;
  }
  return String(err);
}

/** The `message` of a metav1.Status body, which the client hands over parsed or as text. */
function statusMessage(body: unknown): string {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return body.slice(0, 200);
    }
  }
  return typeof value === 'object' &&
    value !== null &&
    'message' in value &&
    typeof value.message === 'string'
    ? value.message
    : '';
}
