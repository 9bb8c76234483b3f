// Lists objects through the API server, page by page (`limit` and `continue`, as kubectl does), for
// `scan`. @kubernetes/client-node supplies the credentials and TLS of the kubeconfig (tokens, client
// certs, exec plugins); the requests themselves are plain GETs whose JSON is kept as sent: the typed
// clients turn objects into model classes, and the rules must judge the object the API server holds,
// not a re-serialisation of it.

import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ApiResource } from '../admission/kinds.js';
import { isObject } from '../core/index.js';

export const DEFAULT_PAGE_SIZE = 500;
/** A page of `limit` objects of up to 1.5 MiB (etcd's limit) each is far below this. */
const MAX_PAGE_BYTES = 512 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 60_000;

/** An object as listed, with apiVersion and kind filled in (list items carry neither). */
export type ListedObject = Record<string, unknown> & { apiVersion: string; kind: string };

/**
 * A page of a list. `restart` is set on the first page of a list started again because its
 * continue token expired; `alreadyListed` counts the objects of this page left out because a page
 * before the restart had them.
 */
export type ListPage =
  | { ok: true; items: ListedObject[]; alreadyListed: number; restart?: ListRestart }
  | { ok: false; status: number; message: string };

/** Why a list was started again from its first page. */
export interface ListRestart {
  /** Pages read before the continue token expired. */
  pagesBefore: number;
  /** The API server's answer (`410 Gone: The provided continue parameter is too old …`). */
  message: string;
}

/** `/api/v1/pods`, `/apis/apps/v1/namespaces/shop/deployments`: the list path of a resource. */
export function listPath(resource: ApiResource, namespace: string | undefined): string {
  const root =
    resource.group === '' ? `/api/${resource.version}` : `/apis/${resource.group}/${resource.version}`;
  const scope =
    resource.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${root}${scope}/${resource.resource}`;
}

/**
 * Every object of `resource` (in `namespace`, or everywhere when undefined), one page at a time.
 * Ends after the first failed page, which says why (403 with the API server's own RBAC message).
 *
 * A continue token lives as long as etcd keeps the revision it was issued at (the API server
 * compacts every 5 minutes by default): a long scan, or a slow reader of the pages, can be told
 * `410 Gone`, reason `Expired`, in the middle of a list. The list is then started once more from
 * the first page, without the token (a consistent list again, not the inconsistent remainder the
 * API server offers), and the objects the pages before already gave (by uid, else namespace and
 * name) are left out, so that nothing is judged twice. A second expiry ends the list with it.
 */
export async function* listObjects(
  kubeConfig: KubeConfig,
  resource: ApiResource,
  namespace: string | undefined,
  pageSize: number = DEFAULT_PAGE_SIZE,
): AsyncGenerator<ListPage> {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (server === undefined) {
    yield { ok: false, status: 0, message: 'the kubeconfig has no current cluster' };
    return;
  }
  const apiVersion = resource.group === '' ? resource.version : `${resource.group}/${resource.version}`;
  // Keys of every object yielded, kept from the first page on: an expiry can come at any page.
  const listed = new Set<string>();
  let restart: ListRestart | undefined;
  let pages = 0;
  let continueToken: string | undefined;
  for (;;) {
    const query = new URLSearchParams({ limit: String(pageSize) });
    if (continueToken !== undefined) query.set('continue', continueToken);
    const url = new URL(`${listPath(resource, namespace)}?${query.toString()}`, server);
    const answer = await get(kubeConfig, url);
    if (!answer.ok) {
      if (isExpired(answer) && continueToken !== undefined && restart === undefined) {
        restart = { pagesBefore: pages, message: answer.message };
        continueToken = undefined;
        continue;
      }
      yield restart !== undefined && isExpired(answer) && continueToken !== undefined
        ? { ...answer, message: `${answer.message} (again, after the list was started over once)` }
        : answer;
      return;
    }
    const body = answer.body;
    const items = isObject(body) && Array.isArray(body['items']) ? body['items'] : undefined;
    if (items === undefined) {
      yield { ok: false, status: answer.status, message: `the answer to GET ${url.pathname} is not a list` };
      return;
    }
    const fresh: ListedObject[] = [];
    let alreadyListed = 0;
    for (const item of items) {
      if (!isObject(item)) continue;
      const key = objectKey(item);
      if (listed.has(key)) {
        alreadyListed++;
        continue;
      }
      listed.add(key);
      fresh.push({ ...item, apiVersion, kind: resource.kind });
    }
    // The first page of the fresh list says it is one.
    const restartNote = restart !== undefined && pages === restart.pagesBefore ? { restart } : {};
    pages++;
    yield { ok: true, items: fresh, alreadyListed, ...restartNote };
    const metadata = isObject(body) ? body['metadata'] : undefined;
    const next = isObject(metadata) ? metadata['continue'] : undefined;
    if (typeof next !== 'string' || next === '') return;
    continueToken = next;
  }
}

/** `410 Gone`, reason `Expired`: the continue token's revision is compacted away. */
function isExpired(answer: { status: number; reason?: string }): boolean {
  return answer.status === 410 && answer.reason === 'Expired';
}

/** An object's identity across two lists: its uid, else (a server that sends none) namespace/name. */
function objectKey(item: Readonly<Record<string, unknown>>): string {
  const metadata = isObject(item['metadata']) ? item['metadata'] : {};
  const uid = metadata['uid'];
  if (typeof uid === 'string' && uid !== '') return `uid:${uid}`;
  const text = (v: unknown): string => (typeof v === 'string' ? v : '');
  return `name:${text(metadata['namespace'])}/${text(metadata['name'])}`;
}

type Answer =
  | { ok: true; status: number; body: unknown }
  | { ok: false; status: number; message: string; reason?: string };

async function get(kubeConfig: KubeConfig, url: URL): Promise<Answer> {
  const options: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  try {
    await kubeConfig.applyToHTTPSOptions(options);
  } catch (err) {
    return {
      ok: false,
      status: 0,
      message: `credentials: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  return new Promise((resolve) => {
    const request = https.request(url, { ...options, timeout: REQUEST_TIMEOUT_MS }, (response) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_PAGE_BYTES) {
          response.destroy(new Error(`page larger than ${MAX_PAGE_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on('error', (err) => {
        resolve({ ok: false, status: 0, message: err.message });
      });
      response.on('end', () => {
        const status = response.statusCode ?? 0;
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        if (status >= 200 && status < 300) {
          resolve(
            body === undefined
              ? { ok: false, status, message: 'the answer is not JSON' }
              : { ok: true, status, body },
          );
          return;
        }
        // A metav1.Status says why in the API server's own words (RBAC names the verb, resource and scope).
        const message =
          isObject(body) && typeof body['message'] === 'string' ? body['message'] : text.slice(0, 200);
        const reason = isObject(body) && typeof body['reason'] === 'string' ? body['reason'] : undefined;
        resolve({
          ok: false,
          status,
          message: `${status} ${response.statusMessage ?? ''}: ${message}`,
          ...(reason === undefined ? {} : { reason }),
        });
      });
    });
    request.on('timeout', () =>
      request.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)),
    );
    request.on('error', (err) => {
      resolve({ ok: false, status: 0, message: err.message });
    });
    request.end();
  });
}
