// The ConfigMap watcher's parts, and its protocol handling against a STAND-IN API server.
//
// The stand-in is a few lines of HTTP that speak list + chunked watch for one ConfigMap and take
// Event POSTs. It is not the API server: the real one (kube-apiserver + etcd) runs only in the
// end-to-end suite, test/e2e/configmap-reload.test.ts, which covers edits, Events, RBAC, delete
// and an API server restart for real. This file runs everywhere and covers what a real server will
// not do on demand: a `410 Gone` mid-watch, a watch refused with a 500, a list refused with a 403.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import t from 'tap';
import {
  describeError,
  invalidRuleSetEvent,
  loadKubeConfig,
  retryDelay,
  truncateUtf8,
  watchRulesConfigMap,
} from '../../src/config/rules-configmap-watch.js';
import { captureLog } from '../helpers/log.js';
import { BROKEN_RULES_ERROR, brokenRulesText, Recorder, rulesText } from '../helpers/ruleset-recorder.js';
import { until } from '../helpers/until.js';

const NS = 'portcullis';
const NAME = 'portcullis-rules';
const ORIGIN = `configmap ${NS}/${NAME} rules.yaml`;
const UID = '6f1e0c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6';

t.test('retryDelay: exponential, capped, jittered in the upper half', async (t) => {
  const backoff = { initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000 };
  t.same(
    [0, 1, 2, 3, 6, 7, 50].map((a) => retryDelay(a, backoff, () => 1)),
    [500, 1000, 2000, 4000, 30_000, 30_000, 30_000],
  );
  t.equal(
    retryDelay(0, backoff, () => 0),
    250,
  );
  t.equal(
    retryDelay(10, backoff, () => 0),
    15_000,
  );
});

t.test('truncateUtf8 cuts at a character boundary within the byte budget', async (t) => {
  t.equal(truncateUtf8('short', 1024), 'short');
  const long = 'é'.repeat(600); // 1200 bytes
  const cut = truncateUtf8(long, 1024);
  t.ok(Buffer.byteLength(cut, 'utf8') <= 1024);
  t.ok(cut.endsWith('…'));
  t.equal(cut, 'é'.repeat(510) + '…', '510 × 2 bytes + 3 bytes of ellipsis');
});

t.test('invalidRuleSetEvent: what `kubectl describe configmap` lists', async (t) => {
  const cm = { metadata: { name: NAME, namespace: NS, uid: UID, resourceVersion: '42' } };
  const now = new Date('2026-11-23T10:00:00.000Z');
  const errors = [
    `${ORIGIN}:9: ${BROKEN_RULES_ERROR}`,
    `${ORIGIN}:12: rules[2].action: must be one of: "deny"`,
  ];
  const event = invalidRuleSetEvent(cm, errors, now, 'portcullis-7d9f');
  t.match(event, {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { namespace: NS, name: /^portcullis-rules\.[0-9a-f]+$/ },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: NS,
      name: NAME,
      uid: UID,
      resourceVersion: '42',
    },
    type: 'Warning',
    reason: 'InvalidRuleSet',
    message: errors.join('; '),
    source: { component: 'portcullis', host: 'portcullis-7d9f' },
    reportingComponent: 'portcullis',
    reportingInstance: 'portcullis-7d9f',
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  });
  const many = Array.from({ length: 40 }, (_, i) => `${ORIGIN}:${i}: ${BROKEN_RULES_ERROR}`);
  const big = invalidRuleSetEvent(cm, many, now, 'x');
  t.ok(Buffer.byteLength(big.message ?? '', 'utf8') <= 1024, 'message truncated to 1 KiB');
});

t.test('describeError keeps one line', async (t) => {
  const err = Object.assign(new Error('Forbidden'), { statusCode: 403 });
  t.equal(describeError(err), 'HTTP 403: Forbidden');
  t.equal(
    describeError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    'connect ECONNREFUSED (ECONNREFUSED)',
  );
  t.equal(describeError('boom'), 'boom');
  const forbidden = new ApiException(403, 'Unknown API Status Code!', '{"kind":"Status","message":"no"}', {});
  t.equal(describeError(forbidden), 'HTTP 403: no');
});

t.test('loadKubeConfig: the file when given, else the in-cluster account when in a pod', async (t) => {
  const dir = t.testdir({
    kubeconfig: `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"}}]
users: [{name: u, user: {token: t0}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
  });
  const saved = { ...process.env };
  t.teardown(() => {
    process.env = saved;
  });
  process.env['KUBERNETES_SERVICE_HOST'] = '10.96.0.1';
  process.env['KUBERNETES_SERVICE_PORT'] = '443';
  process.env['KUBECONFIG'] = `${dir}/kubeconfig`;
  t.equal(
    loadKubeConfig(`${dir}/kubeconfig`).getCurrentCluster()?.server,
    'https://10.0.0.1:6443',
    '--kubeconfig',
  );
  t.equal(loadKubeConfig(undefined).getCurrentCluster()?.server, 'https://10.96.0.1:443', 'in a pod');
  delete process.env['KUBERNETES_SERVICE_HOST'];
  t.equal(loadKubeConfig(undefined).getCurrentCluster()?.server, 'https://10.0.0.1:6443', 'KUBECONFIG');
  t.throws(() => loadKubeConfig(`${dir}/absent`), 'a missing --kubeconfig is an error at start');
});

// ---- the stand-in API server -------------------------------------------------------------------

interface StandIn {
  url: string;
  /** The ConfigMap as stored; `set` bumps its resourceVersion and tells the open watch. */
  set(data: Record<string, string>, options?: { silently?: boolean }): string;
  /** Ends the open watch the way the API server does when the watch's resourceVersion is too old. */
  gone(): void;
  /** The next `n` watch requests get this HTTP status instead of a stream. */
  failWatches(n: number, status: number): void;
  failLists(n: number, status: number): void;
  lists: number;
  watches: string[];
  events: unknown[];
  close(): Promise<void>;
}

async function standIn(initial: Record<string, string>): Promise<StandIn> {
  let rv = 100;
  let data = initial;
  let watch: ServerResponse | undefined;
  let watchFailures = { n: 0, status: 0 };
  let listFailures = { n: 0, status: 0 };
  const configMap = () => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: NAME, namespace: NS, uid: UID, resourceVersion: String(rv) },
    data,
  });
  const status = (code: number) => ({
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    code,
    message: `stand-in ${code}`,
  });

  const state: StandIn = {
    url: '',
    lists: 0,
    watches: [],
    events: [],
    set(next, options = {}) {
      rv += 1;
      data = next;
      if (!options.silently) watch?.write(JSON.stringify({ type: 'MODIFIED', object: configMap() }) + '\n');
      return String(rv);
    },
    gone() {
      watch?.end(JSON.stringify({ type: 'ERROR', object: status(410) }) + '\n');
      watch = undefined;
    },
    failWatches(n, code) {
      watchFailures = { n, status: code };
    },
    failLists(n, code) {
      listFailures = { n, status: code };
    },
    close: async () => {
      watch?.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };

  const json = (res: ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    if (req.method === 'POST' && url.pathname === `/api/v1/namespaces/${NS}/events`) {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const event: unknown = JSON.parse(body);
        state.events.push(event);
        json(res, 201, event);
      });
      return;
    }
    if (req.method !== 'GET' || url.pathname !== `/api/v1/namespaces/${NS}/configmaps`) {
      json(res, 404, status(404));
      return;
    }
    if (url.searchParams.get('fieldSelector') !== `metadata.name=${NAME}`) {
      json(res, 400, status(400));
      return;
    }
    if (url.searchParams.get('watch') !== 'true') {
      state.lists += 1;
      if (listFailures.n > 0) {
        listFailures.n -= 1;
        json(res, listFailures.status, status(listFailures.status));
        return;
      }
      json(res, 200, {
        apiVersion: 'v1',
        kind: 'ConfigMapList',
        metadata: { resourceVersion: String(rv) },
        items: [configMap()],
      });
      return;
    }
    state.watches.push(url.searchParams.get('resourceVersion') ?? '');
    if (watchFailures.n > 0) {
      watchFailures.n -= 1;
      json(res, watchFailures.status, status(watchFailures.status));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    watch = res;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('stand-in: no TCP address');
  state.url = `http://127.0.0.1:${address.port}`;
  return state;
}

function kubeConfigFor(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'stand-in', server: url, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'stand-in-token' }],
    contexts: [{ name: 'c', cluster: 'stand-in', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

t.test('stand-in API server: list, watch, 410 relist, watch errors, Events', async (t) => {
  const api = await standIn({ 'rules.yaml': rulesText('team-0') });
  t.teardown(() => api.close());
  const recorder = new Recorder();
  const captured = captureLog();
  const watch = watchRulesConfigMap({
    ref: { namespace: NS, name: NAME },
    kubeConfig: kubeConfigFor(api.url),
    log: captured.log,
    onRuleSet: recorder.onRuleSet,
    onInvalid: recorder.onInvalid,
    backoff: { initialMs: 20, maxMs: 100 },
    instance: 'test-instance',
  });
  t.teardown(() => watch.stop());

  const first = await recorder.next();
  t.equal(first.kind === 'ruleset' && first.loaded.resourceVersion, '100', 'the list loads the RuleSet');
  await until(() => api.watches.length === 1, 5_000, 'the watch');
  t.same(api.watches, ['100'], 'the watch starts from the list');

  const rv1 = api.set({ 'rules.yaml': rulesText('team-1') });
  const d1 = await recorder.next();
  t.equal(d1.kind === 'ruleset' && d1.loaded.resourceVersion, rv1, 'a watch event loads the edit');

  // An edit the watch never saw, then 410 Gone: only a relist can find it.
  const rv2 = api.set({ 'rules.yaml': rulesText('team-2') }, { silently: true });
  api.gone();
  const d2 = await recorder.next();
  t.equal(
    d2.kind === 'ruleset' && d2.loaded.resourceVersion,
    rv2,
    '410 Gone relists and finds the missed edit',
  );
  t.equal(api.lists, 2);

  // A watch refused outright stops ListWatch for good: the watcher restarts it after a backoff.
  await until(() => api.watches.length === 2, 5_000, 'the watch after the relist');
  api.failWatches(2, 500);
  api.gone();
  await until(() => api.watches.length === 5, 5_000, 'two refused watches and a third that holds');
  const rv3 = api.set({ 'rules.yaml': rulesText('team-3') });
  const d3 = await recorder.next();
  t.equal(d3.kind === 'ruleset' && d3.loaded.resourceVersion, rv3, 'loaded after the restarted watch');
  const failures = captured.lines().filter((l) => l['msg'] === 'rules ConfigMap watch failed; restarting it');
  t.same(
    failures.map((l) => l['error']),
    ['HTTP 500: Internal Server Error', 'HTTP 500: Internal Server Error'],
  );

  const rv4 = api.set({ 'rules.yaml': brokenRulesText() });
  const refused = await recorder.next();
  t.same(refused.kind === 'invalid' && refused.errors, [`${ORIGIN}:9: ${BROKEN_RULES_ERROR}`]);
  await until(() => api.events.length === 1, 5_000, 'the Event POST');
  t.match(api.events[0], {
    reason: 'InvalidRuleSet',
    type: 'Warning',
    message: `${ORIGIN}:9: ${BROKEN_RULES_ERROR}`,
    involvedObject: { kind: 'ConfigMap', name: NAME, namespace: NS, uid: UID, resourceVersion: rv4 },
    reportingComponent: 'portcullis',
    source: { component: 'portcullis' },
  });

  await watch.stop();
  api.set({ 'rules.yaml': rulesText('team-4') });
  t.same(await recorder.during(200), [], 'nothing after stop()');
});

t.test('stand-in API server: a list refused with 403 is retried, not fatal', async (t) => {
  const api = await standIn({ 'rules.yaml': rulesText('team-0') });
  t.teardown(() => api.close());
  api.failLists(3, 403);
  const recorder = new Recorder();
  const captured = captureLog();
  const watch = watchRulesConfigMap({
    ref: { namespace: NS, name: NAME },
    kubeConfig: kubeConfigFor(api.url),
    log: captured.log,
    onRuleSet: recorder.onRuleSet,
    onInvalid: recorder.onInvalid,
    backoff: { initialMs: 20, maxMs: 100 },
  });
  t.teardown(() => watch.stop());
  const first = await recorder.next();
  t.equal(first.kind, 'ruleset');
  t.equal(api.lists, 4);
  const failures = captured.lines().filter((l) => l['msg'] === 'rules ConfigMap watch failed; restarting it');
  t.equal(failures.length, 3);
  t.equal(failures[0]?.['error'], 'HTTP 403: stand-in 403', 'the Status message, not the response dump');
});
