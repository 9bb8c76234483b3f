// The labels of the pod a CONNECT (exec, attach, port-forward) goes into, for a podExec rule with
// `podSelector`: the admission request names the pod but does not carry it. One GET of the pod's
// metadata only (PartialObjectMetadata: the spec, env values included, never leaves the API
// server), bounded in time and size. Never throws: a failed lookup is a value whose reason the
// rule cites, and the rule's action decides (a deny rule fails closed).

import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { isObject, type PodLookup } from '../core/index.js';

export type PodLabelLookup = (namespace: string, name: string) => Promise<PodLookup>;

/** Well inside the webhook's 5 s timeoutSeconds, so the answer, not the API server's timeout, says why. */
export const POD_LOOKUP_TIMEOUT_MS = 2_000;
/** A pod's metadata is small; anything larger is not an answer to this request. */
const MAX_BODY_BYTES = 1024 * 1024;
const ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

/** `kubeConfig` is called on the first lookup (credentials load only once a rule needs them). */
export function podLabelLookup(
  kubeConfig: () => Promise<KubeConfig>,
  timeoutMs: number = POD_LOOKUP_TIMEOUT_MS,
): PodLabelLookup {
  let config: Promise<KubeConfig> | undefined;
  return async (namespace, name) => {
    let kc: KubeConfig;
    try {
      config ??= kubeConfig();
      kc = await config;
    } catch (err) {
      config = undefined; // tried again on the next lookup: the credentials may appear
      return { ok: false, error: `no cluster credentials to look the pod up with: ${messageOf(err)}` };
    }
    const server = kc.getCurrentCluster()?.server;
    if (server === undefined)
      return { ok: false, error: 'no cluster in the credentials to look the pod up in' };
    const url = new URL(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
      server,
    );
    const options: https.RequestOptions = { method: 'GET', headers: { accept: ACCEPT } };
    try {
      await kc.applyToHTTPSOptions(options);
    } catch (err) {
      return { ok: false, error: `cannot use the cluster credentials: ${messageOf(err)}` };
    }
    return get(url, options, timeoutMs, `${namespace}/${name}`);
  };
}

function get(url: URL, options: https.RequestOptions, timeoutMs: number, pod: string): Promise<PodLookup> {
  return new Promise((resolve) => {
    let settled = false;
    const request = https.request(url, options, (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          settle({
            ok: false,
            error: `the API server sent more than ${MAX_BODY_BYTES} bytes for pod ${pod}`,
          });
        } else chunks.push(chunk);
      });
      response.on('end', () => {
        settle(answer(response.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), pod));
      });
      response.on('error', (err) => {
        settle({ ok: false, error: `reading pod ${pod}: ${err.message}` });
      });
    });
    const timer = setTimeout(() => {
      settle({ ok: false, error: `looking pod ${pod} up took more than ${timeoutMs} ms` });
    }, timeoutMs);
    request.on('error', (err) => {
      settle({ ok: false, error: `cannot look pod ${pod} up: ${err.message}` });
    });
    request.end();

    function settle(result: PodLookup): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(result);
    }
  });
}

function answer(status: number, body: string, pod: string): PodLookup {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (status !== 200) {
    const message = isObject(parsed) && typeof parsed['message'] === 'string' ? `: ${parsed['message']}` : '';
    return { ok: false, error: `the API server answered ${status} for pod ${pod}${message}` };
  }
  const metadata = isObject(parsed) ? parsed['metadata'] : undefined;
  if (!isObject(metadata))
    return { ok: false, error: `the API server's answer for pod ${pod} has no metadata` };
  const raw = metadata['labels'] ?? {};
  if (!isObject(raw)) return { ok: false, error: `pod ${pod} has labels that are not a map` };
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value === 'string') labels[key] = value;
  }
  return { ok: true, labels };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
