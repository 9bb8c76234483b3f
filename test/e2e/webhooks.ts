// The webhook configurations exactly as `kubectl kustomize manifests/` renders them, with one change:
// each webhook's clientConfig points at the local server (`url`) instead of the in-cluster Service,
// with the caBundle from `portcullis certs`. Rules, matchConditions, failurePolicy, selectors,
// timeouts and names stay as shipped, so what ships is what the end-to-end suite tests. The
// rendering itself is test/helpers/webhooks.ts', shared with the manifest tests; this only types it.

import { stringify } from 'yaml';
import { renderWebhookConfigurations } from '../helpers/webhooks.js';

export { renderManifests } from '../helpers/webhooks.js';

export interface Webhook {
  name: string;
  failurePolicy?: string;
  clientConfig: Record<string, unknown>;
  [field: string]: unknown;
}

export interface WebhookConfiguration {
  apiVersion: string;
  kind: 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration';
  metadata: { name: string; [field: string]: unknown };
  webhooks: Webhook[];
}

/** The rendered configurations with every webhook's clientConfig `{url: <serverUrl><path>, caBundle}`. */
export function pointWebhooksAt(serverUrl: string, caBundle: string): WebhookConfiguration[] {
  // The shape kubectl kustomize rendered and the API server's schema (test/manifests) vouch for.
  return renderWebhookConfigurations({ url: serverUrl, caBundle }) as unknown as WebhookConfiguration[];
}

export function toYaml(objects: readonly unknown[]): string {
  return objects.map((obj) => stringify(obj)).join('---\n');
}
