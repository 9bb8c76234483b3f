// `portcullis scan` when a list's continue token expires mid-list (410 Gone, reason Expired): the
// list starts over once, nothing is judged twice, and the restart is noted. The API server here is
// a stand-in (an HTTPS server on loopback answering the list paths): it lets each row say exactly
// which request expires. The real expiry, a token compacted away in etcd, is made to happen on a
// real kube-apiserver in test/e2e/scan-expired.test.ts.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import t from 'tap';
import { restartNotice, runScan } from '../../src/cli/scan.js';
import { localhostCertificates } from '../helpers/server.js';

const certificates = await localhostCertificates();
const NOW = new Date('2026-12-01T10:00:00Z');

const pod = (name: string, privileged = false) => ({
  metadata: { name, namespace: 'shop', uid: `uid-${name}` },
  spec: {
    containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', securityContext: { privileged } }],
  },
});
const EXPIRED = {
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  message:
    'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
  reason: 'Expired',
  code: 410,
  metadata: { continue: 'inconsistent' },
};

/** Serves pods of shop in pages of two; `expire(n)` says whether the n-th continued request is refused. */
async function standIn(objects: () => unknown[], expire: (continued: number) => boolean, reason = 'Expired') {
  const requests: string[] = [];
  let continued = 0;
  const server = https.createServer({ cert: certificates.cert, key: certificates.key }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    requests.push(`${url.pathname}?${url.searchParams.toString()}`);
    res.setHeader('content-type', 'application/json');
    if (url.pathname !== '/api/v1/namespaces/shop/pods') {
      res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: {}, items: [] }));
      return;
    }
    const token = url.searchParams.get('continue');
    if (token !== null && expire(++continued)) {
      res.statusCode = 410;
      res.end(JSON.stringify({ ...EXPIRED, reason }));
      return;
    }
    const start = token === null ? 0 : Number(token);
    const all = objects();
    const next = start + 2 < all.length ? String(start + 2) : '';
    res.end(
      JSON.stringify({
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: { continue: next },
        items: all.slice(start, start + 2),
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: `https://127.0.0.1:${port}`,
        caData: Buffer.from(certificates.ca.cert).toString('base64'),
      },
    ],
    users: [{ name: 'u', token: 'x' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u', namespace: 'shop' }],
    currentContext: 'ctx',
  });
  return {
    kubeConfig,
    requests,
    close: () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'portcullis-scan-restart-'));
t.teardown(() => {
  rmSync(dir, { recursive: true, force: true });
});
const rules = join(dir, 'rules.yaml');
writeFileSync(
  rules,
  'apiVersion: portcullis.io/v1\nkind: RuleSet\nrules:\n  - name: no-privileged\n    check: privileged\n',
);
const scan = (kubeConfig: KubeConfig) =>
  runScan({ rules, output: 'json', chunkSize: 2, namespace: 'shop' }, kubeConfig, NOW);
const judged = (output: string): string[] =>
  (JSON.parse(output) as { results: { name: string; allowed: boolean }[] }).results.map(
    (r) => `${r.name}:${r.allowed ? 'allowed' : 'denied'}`,
  );

t.test('the token expires once: the list starts over, nothing is judged twice', async (t) => {
  let objects = [pod('a'), pod('b', true), pod('c'), pod('d'), pod('e')];
  const api = await standIn(
    () => objects,
    (n) => {
      // Between the lists, a pod is added at the front of the order and one is deleted.
      if (n === 2) objects = [pod('0-new'), pod('a'), pod('b', true), pod('d'), pod('e')];
      return n === 2;
    },
  );
  t.teardown(api.close);
  const run = await scan(api.kubeConfig);
  t.same(
    api.requests.filter((r) => r.startsWith('/api/v1/namespaces/shop/pods')),
    [
      '/api/v1/namespaces/shop/pods?limit=2',
      '/api/v1/namespaces/shop/pods?limit=2&continue=2',
      '/api/v1/namespaces/shop/pods?limit=2&continue=4',
      '/api/v1/namespaces/shop/pods?limit=2',
      '/api/v1/namespaces/shop/pods?limit=2&continue=2',
      '/api/v1/namespaces/shop/pods?limit=2&continue=4',
    ],
  );
  t.same(run.errors, []);
  t.same(run.notices, [
    'the continue token of the list of pods in namespace "shop" expired after 2 pages (410 Gone, reason Expired): listed again from the start; 3 objects already judged from the first pages left out',
  ]);
  t.same(judged(run.output), [
    'a:allowed',
    'b:denied',
    'c:allowed',
    'd:allowed',
    '0-new:allowed',
    'e:allowed',
  ]);
  t.equal(run.exitCode, 1, 'b is denied; the restart changes no verdict');
});

t.test('the fresh list expires too: the kind is reported, exit 2', async (t) => {
  const api = await standIn(
    () => [pod('a'), pod('b'), pod('c')],
    () => true,
  );
  t.teardown(api.close);
  const run = await scan(api.kubeConfig);
  t.same(run.errors, [
    `cannot list pods in namespace "shop": 410 Gone: ${EXPIRED.message} (again, after the list was started over once)`,
  ]);
  t.same(judged(run.output), ['a:allowed', 'b:allowed'], 'the first page, once');
  t.equal(run.exitCode, 2);
});

t.test('a 410 with another reason is not retried: the kind is reported', async (t) => {
  const api = await standIn(
    () => [pod('a'), pod('b'), pod('c')],
    () => true,
    'Gone',
  );
  t.teardown(api.close);
  const run = await scan(api.kubeConfig);
  t.same(run.errors, [`cannot list pods in namespace "shop": 410 Gone: ${EXPIRED.message}`]);
  t.same([run.notices, run.exitCode], [[], 2]);
  t.equal(api.requests.filter((r) => r === '/api/v1/namespaces/shop/pods?limit=2').length, 1, 'listed once');
});

t.test('the note, singular and plural', async (t) => {
  t.equal(
    restartNotice('deployments.apps', 'in all namespaces', { pagesBefore: 1, message: '' }, 1),
    'the continue token of the list of deployments.apps in all namespaces expired after 1 page (410 Gone, reason Expired): listed again from the start; 1 object already judged from the first pages left out',
  );
});
