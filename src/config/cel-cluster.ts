// What `cel` rules need from the cluster while `serve` runs:
// - the Namespaces (list, then watch), for `namespaceObject` and `namespaceSelector`;
// - Portcullis' own ValidatingWebhookConfiguration kept in step with the RuleSet in force: the
//   rules of its `custom.portcullis.io` webhook are the union of the `cel` rules' resourceRules,
//   so a rule for a kind the webhook did not send before is enforced without touching it by hand.
//   Only the configuration named on the command line is patched (RBAC grants `patch` on that name
//   alone), and only that webhook's `rules`, with a JSON patch that first tests the webhook's name.
// Both restart with the same capped, jittered backoff as the rules ConfigMap watch.

import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  ListWatch,
  Watch,
  type KubeConfig,
  type V1Namespace,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { celWebhookRules, type CompiledRuleSet, type WebhookRule } from '../core/index.js';
import { DEFAULT_BACKOFF, describeError, retryDelay } from './rules-configmap-watch.js';

/** The webhook of the shipped configuration whose rules follow the `cel` rules. */
export const CEL_WEBHOOK_NAME = 'custom.portcullis.io';

export interface NamespaceWatch {
  /** Namespace objects by name, as JSON; kept current by the watch. */
  readonly namespaces: ReadonlyMap<string, unknown>;
  stop(): Promise<void>;
}

export function watchNamespaces(kubeConfig: KubeConfig, log: Logger): NamespaceWatch {
  const api = kubeConfig.makeApiClient(CoreV1Api);
  const namespaces = new Map<string, unknown>();
  // The client's models hold Dates; CEL sees the JSON the API server sent.
  const store = (ns: V1Namespace): void => {
    const name = ns.metadata?.name;
    if (name !== undefined) namespaces.set(name, JSON.parse(JSON.stringify(ns)));
  };
  const informer = new ListWatch<V1Namespace>(
    '/api/v1/namespaces',
    new Watch(kubeConfig),
    async () => {
      const list = await api.listNamespace();
      namespaces.clear();
      for (const ns of list.items) store(ns);
      return list;
    },
    false,
  );
  informer.on('add', store);
  informer.on('update', store);
  informer.on('delete', (ns) => {
    if (ns.metadata?.name !== undefined) namespaces.delete(ns.metadata.name);
  });
  let stopped = false;
  let attempt = 0;
  let retry: NodeJS.Timeout | undefined;
  const start = (): void => {
    informer.start().then(() => {
      attempt = 0;
    }, failed);
  };
  function failed(err: unknown): void {
    if (stopped) return;
    clearTimeout(retry);
    const delayMs = retryDelay(attempt++, DEFAULT_BACKOFF, Math.random);
    log.warn(
      { error: describeError(err), retryInMs: Math.round(delayMs) },
      'Namespace watch failed; restarting it',
    );
    retry = setTimeout(start, delayMs);
  }
  informer.on('error', failed);
  start();
  return {
    namespaces,
    async stop() {
      stopped = true;
      clearTimeout(retry);
      await informer.stop();
    },
  };
}

export interface WebhookSync {
  /** Called with every RuleSet put in force; the patch follows asynchronously, latest wins. */
  update(ruleset: CompiledRuleSet): void;
  stop(): void;
}

export function syncWebhookRules(kubeConfig: KubeConfig, configuration: string, log: Logger): WebhookSync {
  const api = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const logger = log.child({ webhookConfiguration: configuration, webhook: CEL_WEBHOOK_NAME });
  let wanted: WebhookRule[] | undefined;
  let applied: string | undefined;
  let running = false;
  let stopped = false;
  let attempt = 0;
  let retry: NodeJS.Timeout | undefined;

  const apply = async (): Promise<void> => {
    if (running || stopped || wanted === undefined) return;
    const rules = wanted;
    const text = JSON.stringify(rules);
    if (text === applied) return;
    running = true;
    try {
      const current = await api.readValidatingWebhookConfiguration({ name: configuration });
      const index = (current.webhooks ?? []).findIndex((w) => w.name === CEL_WEBHOOK_NAME);
      if (index === -1) {
        logger.error({}, 'the webhook configuration has no webhook for cel rules; their kinds are not sent');
        applied = text;
        return;
      }
      const before = JSON.stringify(current.webhooks?.[index]?.rules ?? []);
      if (before !== text) {
        await api.patchValidatingWebhookConfiguration({
          name: configuration,
          body: [
            { op: 'test', path: `/webhooks/${index}/name`, value: CEL_WEBHOOK_NAME },
            { op: 'add', path: `/webhooks/${index}/rules`, value: rules },
          ],
        });
        logger.info({ rules: rules.length }, 'webhook rules follow the cel rules in force');
      }
      applied = text;
      attempt = 0;
    } catch (err) {
      const delayMs = retryDelay(attempt++, DEFAULT_BACKOFF, Math.random);
      logger.warn(
        { error: describeError(err), retryInMs: Math.round(delayMs) },
        'could not update the webhook rules',
      );
      clearTimeout(retry);
      retry = setTimeout(() => void apply(), delayMs);
    } finally {
      running = false;
    }
    // A RuleSet that arrived while this one was being applied.
    if (wanted !== rules) void apply();
  };

  return {
    update(ruleset) {
      wanted = celWebhookRules(ruleset);
      void apply();
    },
    stop() {
      stopped = true;
      clearTimeout(retry);
    },
  };
}
