// Portcullis' shipped manifests as objects, rendered by the real `kubectl kustomize`, so tests use
// what ships instead of hand-written copies. The end-to-end suite takes the webhook configurations
// from here with `clientConfig` pointed at a local server:
//
//   const configs = renderWebhookConfigurations({ url: `https://127.0.0.1:${port}`, caBundle });
//   // kubectl apply -f - with JSON.stringify({ apiVersion: 'v1', kind: 'List', items: configs })
//
// Never register the base's configurations (clientConfig.service) on a test API server: it would
// dial the Service's ClusterIP, an address outside this machine.

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { isObject } from '../../src/core/index.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MANIFESTS_DIR = fileURLToPath(new URL('../../manifests/', import.meta.url));

export type KubeObject = Record<string, unknown> & { apiVersion: string; kind: string };

/** The core's own test for a JSON object, writable for test code that edits copies. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return isObject(value);
}

function isKubeObject(value: unknown): value is KubeObject {
  return isRecord(value) && typeof value['apiVersion'] === 'string' && typeof value['kind'] === 'string';
}

/** Parses a multi-document YAML stream of Kubernetes objects; throws on anything else. */
export function parseObjects(text: string, origin: string): KubeObject[] {
  return parseAllDocuments(text).flatMap((document, i) => {
    if (document.errors.length > 0)
      throw new Error(`${origin}: document ${i}: ${document.errors.join('; ')}`);
    const value: unknown = document.toJS();
    if (value === null || value === undefined) return [];
    if (!isKubeObject(value)) throw new Error(`${origin}: document ${i} is not a Kubernetes object`);
    return [value];
  });
}

/** Certificate files for an overlay that reads them (test/helpers/manifests.ts writes them). */
export type OverlayCerts = Record<'ca.crt' | 'tls.crt' | 'tls.key', string>;

type Renderer = (dir: string, certs: OverlayCerts, extra: Record<string, string>) => KubeObject[];
let alternateRenderer: Renderer | undefined;

/**
 * From now on, renderManifests and renderInScratchTree return `render(dir, …)` instead of
 * kustomize's output: how test/manifests/helm/ runs the manifest tests on the Helm chart's render.
 */
export function setAlternateRenderer(render: Renderer): void {
  alternateRenderer = render;
}

export function alternateRender(
  dir: string,
  certs: OverlayCerts,
  extra: Record<string, string>,
): KubeObject[] | undefined {
  return alternateRenderer?.(dir, certs, extra);
}

/** `kubectl kustomize DIR` (the base by default), as objects in kustomize's output order. */
export function renderManifests(dir: string = MANIFESTS_DIR, certs?: OverlayCerts): KubeObject[] {
  if (alternateRenderer !== undefined) {
    if (certs === undefined && /overlays\/(portcullis-certs|local-url)\/?$/.test(dir)) {
      throw new Error(`${dir} needs certificates: render it with renderInScratchTree`);
    }
    return alternateRenderer(dir, certs ?? { 'ca.crt': '', 'tls.crt': '', 'tls.key': '' }, {});
  }
  let text: string;
  try {
    text = execFileSync('kubectl', ['kustomize', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const stderr =
      isRecord(err) && typeof err['stderr'] === 'string'
        ? err['stderr']
        : err instanceof Error
          ? err.message
          : 'failed';
    throw new Error(`kubectl kustomize ${dir} failed: ${stderr.trim()}`);
  }
  return parseObjects(text, `kubectl kustomize ${dir}`);
}

export interface WebhookTarget {
  /** Origin of the server, e.g. `https://127.0.0.1:8443`; each webhook keeps its path (/validate, /mutate). */
  url: string;
  /** Base64 of the PEM CA that signed the server's certificate (what `portcullis certs` prints). */
  caBundle: string;
  /** Replaces every webhook's failurePolicy, e.g. `Ignore` to show the difference with Portcullis stopped. */
  failurePolicy?: 'Fail' | 'Ignore';
}

/**
 * The rendered ValidatingWebhookConfiguration and MutatingWebhookConfiguration, unchanged but for
 * each webhook's `clientConfig`, which becomes `{url: <url><service path>, caBundle}`.
 */
export function renderWebhookConfigurations(
  target: WebhookTarget,
  dir: string = MANIFESTS_DIR,
): KubeObject[] {
  const origin = new URL(target.url);
  if (origin.protocol !== 'https:') throw new Error(`webhook url must be https: ${target.url}`);
  if (origin.pathname !== '/' || origin.search !== '') {
    throw new Error(
      `webhook url must be an origin without a path (each webhook keeps its own): ${target.url}`,
    );
  }
  const configs = renderManifests(dir).filter(
    (o) =>
      o.apiVersion === 'admissionregistration.k8s.io/v1' &&
      (o.kind === 'ValidatingWebhookConfiguration' || o.kind === 'MutatingWebhookConfiguration'),
  );
  if (configs.length !== 2)
    throw new Error(`expected 2 webhook configurations in ${dir}, found ${configs.length}`);
  return configs.map((config) => {
    const webhooks = config['webhooks'];
    if (!Array.isArray(webhooks)) throw new Error(`${config.kind} has no webhooks`);
    return {
      ...config,
      webhooks: webhooks.map((webhook: unknown) => {
        if (!isRecord(webhook) || !isRecord(webhook['clientConfig'])) {
          throw new Error(`${config.kind}: a webhook has no clientConfig`);
        }
        const service = webhook['clientConfig']['service'];
        const path = isRecord(service) && typeof service['path'] === 'string' ? service['path'] : '/';
        return {
          ...webhook,
          ...(target.failurePolicy === undefined ? {} : { failurePolicy: target.failurePolicy }),
          clientConfig: { url: new URL(path, origin).toString(), caBundle: target.caBundle },
        };
      }),
    };
  });
}
