// The pod lookup behind podSelector, against a stand-in for the API server on loopback HTTPS (a
// stand-in so that slow, refusing and broken answers can be produced on demand; the real API server
// answers it in test/e2e/exec.test.ts). Every failure is a value with its reason, never a throw.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import t from 'tap';
import { podLabelLookup } from '../../src/server/pod-lookup.js';
import { localhostCertificates } from '../helpers/server.js';

const certificates = await localhostCertificates();
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
const seen: { url: string | undefined; accept: string | undefined; authorization: string | undefined }[] = [];
const server: Server = createServer({ key: certificates.key, cert: certificates.cert }, (req, res) => {
  seen.push({ url: req.url, accept: req.headers.accept, authorization: req.headers.authorization });
  handler(req, res);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
t.teardown(() => {
  server.closeAllConnections();
  server.close();
});
const address = server.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: `https://127.0.0.1:${port}`,
        caData: Buffer.from(certificates.ca.cert).toString('base64'),
      },
    ],
    users: [{ name: 'u', token: 'the-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}
const lookup = podLabelLookup(() => Promise.resolve(kubeConfig()), 300);
const json =
  (status: number, body: unknown): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

t.test('the labels of the pod, asking for its metadata only, with the credentials', async (t) => {
  seen.length = 0;
  handler = json(200, {
    kind: 'PartialObjectMetadata',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { name: 'web', namespace: 'shop', labels: { debuggable: 'true', app: 'web' } },
  });
  t.same(await lookup('shop', 'web'), { ok: true, labels: { debuggable: 'true', app: 'web' } });
  t.same(seen, [
    {
      url: '/api/v1/namespaces/shop/pods/web',
      accept: 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json',
      authorization: 'Bearer the-token',
    },
  ]);
  handler = json(200, { metadata: { name: 'web' } });
  t.same(await lookup('shop', 'web'), { ok: true, labels: {} }, 'a pod without labels');
});

t.test('every failure is a reason', async (t) => {
  const rows: [name: string, handler: Handler, error: string][] = [
    [
      'no such pod',
      json(404, { kind: 'Status', message: 'pods "web" not found', code: 404 }),
      'the API server answered 404 for pod shop/web: pods "web" not found',
    ],
    [
      'forbidden (the shipped RBAC does not grant get on pods)',
      json(403, { kind: 'Status', message: 'pods "web" is forbidden: User "x" cannot get resource "pods"' }),
      'the API server answered 403 for pod shop/web: pods "web" is forbidden: User "x" cannot get resource "pods"',
    ],
    [
      'not JSON',
      (_req, res) => res.writeHead(200).end('<html>'),
      "the API server's answer for pod shop/web has no metadata",
    ],
    [
      'labels not a map',
      json(200, { metadata: { labels: ['a'] } }),
      'pod shop/web has labels that are not a map',
    ],
    ['no answer in time', () => undefined, 'looking pod shop/web up took more than 300 ms'],
    [
      'an answer too large',
      (_req, res) => {
        res.writeHead(200);
        res.write(Buffer.alloc(1024 * 1024 + 1, 'a'));
      },
      'the API server sent more than 1048576 bytes for pod shop/web',
    ],
  ];
  for (const [name, h, error] of rows) {
    handler = h;
    const started = performance.now();
    t.same(await lookup('shop', 'web'), { ok: false, error }, name);
    t.ok(performance.now() - started < 2_000, `${name}: answered within the bound`);
  }
});

t.test('credentials that cannot be loaded are a reason too, and are tried again', async (t) => {
  let tries = 0;
  const broken = podLabelLookup(() => {
    tries++;
    return Promise.reject(new Error('ENOENT: /var/run/secrets/kubernetes.io/serviceaccount/token'));
  });
  const expected = {
    ok: false,
    error:
      'no cluster credentials to look the pod up with: ENOENT: /var/run/secrets/kubernetes.io/serviceaccount/token',
  };
  t.same(await broken('shop', 'web'), expected);
  t.same(await broken('shop', 'web'), expected);
  t.equal(tries, 2);
  const nowhere = podLabelLookup(() => Promise.resolve(new KubeConfig()));
  t.same(await nowhere('shop', 'web'), {
    ok: false,
    error: 'no cluster in the credentials to look the pod up in',
  });
  const closed = podLabelLookup(() => {
    const kc = kubeConfig();
    kc.clusters[0] = { ...kc.clusters[0], name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: false };
    return Promise.resolve(kc);
  });
  const refused = await closed('shop', 'web');
  t.match(refused, {
    ok: false,
    error: /^cannot look pod shop\/web up: connect ECONNREFUSED 127\.0\.0\.1:1$/,
  });
});
