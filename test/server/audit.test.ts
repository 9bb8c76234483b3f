// Audit events: their audit.k8s.io/v1 shape, one per answer into a file, and the webhook sink's
// batching, retries and bounded queue against a local HTTPS collector.

import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Counter } from 'prom-client';
import t from 'tap';
import { microTimestamp, type AuditEvent } from '../../src/audit/event.js';
import { JsonLinesSink } from '../../src/audit/sink.js';
import { WebhookSink, type WebhookSinkOptions } from '../../src/audit/webhook.js';
import { createMetrics, type Metrics } from '../../src/server/metrics.js';
import { captureLog } from '../helpers/log.js';
import { PACKAGE_VERSION } from '../helpers/package.js';
import { currentHash, localhostCertificates, podCreateReview, startServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const certificates = await localhostCertificates();

async function count(counter: Counter<'sink'>, sink: string): Promise<number> {
  return (await counter.get()).values.find((v) => v.labels.sink === sink)?.value ?? 0;
}

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

t.test('microsecond RFC 3339 timestamps', async (t) => {
  t.equal(microTimestamp(Date.UTC(2026, 10, 23, 10, 0, 0, 123) + 0.456), '2026-11-23T10:00:00.123456Z');
  t.equal(microTimestamp(Date.UTC(2026, 10, 23, 10, 0, 0, 0)), '2026-11-23T10:00:00.000000Z');
  t.equal(microTimestamp(Date.UTC(2026, 10, 23, 10, 0, 0, 999) + 0.999), '2026-11-23T10:00:00.999999Z');
  t.equal(
    microTimestamp(Date.UTC(2026, 10, 23, 10, 0, 0, 999) + 0.9999),
    '2026-11-23T10:00:01.000000Z',
    'rounds',
  );
});

t.test(
  '--audit-log: one JSON line per answer, shaped as audit.k8s.io/v1 Event, flushed on shutdown',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-audit-'));
    const path = join(dir, 'audit.log');
    const metrics = createMetrics();
    const file = await JsonLinesSink.openFile(path, metrics.audit, pino({ level: 'silent' }));
    const srv = await startServer({ certificates, sinks: [file], metrics });

    const denied = podCreateReview();
    const dryRun = podCreateReview();
    dryRun.request['dryRun'] = true;
    dryRun.request.object.spec.securityContext = { seccompProfile: { type: 'RuntimeDefault' } };
    const replies = [
      await srv.request('/validate', { body: denied, headers: { 'user-agent': 'kube-apiserver-admission' } }),
      await srv.request('/mutate', { body: podCreateReview() }),
      await srv.request('/validate', { body: dryRun }),
      await srv.request('/validate', { body: '{not json' }),
    ];
    const more = await Promise.all(
      Array.from({ length: 46 }, () => srv.request('/validate', { body: podCreateReview() })),
    );
    await srv.close();

    const lines = (await readFile(path, 'utf8')).split('\n').filter((l) => l !== '');
    t.equal(lines.length, replies.length + more.length, 'one line per answer');
    t.equal(await count(metrics.auditWritten, 'file'), lines.length);
    t.equal(await count(metrics.auditDropped, 'file'), 0);
    const events = lines.map((l) => JSON.parse(l) as AuditEvent);

    const [deny, mutate, allow, invalid] = events;
    t.strictSame(
      { ...deny, requestReceivedTimestamp: '', stageTimestamp: '' },
      {
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1',
        level: 'Metadata',
        auditID: denied.request['uid'],
        stage: 'ResponseComplete',
        requestURI: '/validate',
        verb: 'create',
        sourceIPs: ['127.0.0.1'],
        userAgent: 'kube-apiserver-admission',
        requestReceivedTimestamp: '',
        stageTimestamp: '',
        user: denied.request['userInfo'],
        objectRef: { resource: 'pods', namespace: 'shop', apiVersion: 'v1' },
        responseStatus: {
          metadata: {},
          status: 'Failure',
          code: 403,
          reason: 'Forbidden',
          message:
            'pod or containers "migrate", "web", "log-shipper": securityContext.seccompProfile.type must be set to RuntimeDefault or Localhost [require-seccomp]',
        },
        annotations: {
          'portcullis.io/decision': 'deny',
          'portcullis.io/ruleset-hash': currentHash(srv.rules),
          'portcullis.io/dry-run': 'false',
          'portcullis.io/endpoint': 'validate',
          'portcullis.io/version': PACKAGE_VERSION,
          'portcullis.io/violations': 'require-seccomp=deny',
        },
      },
    );
    for (const e of events) {
      t.match(e.requestReceivedTimestamp, TIMESTAMP);
      t.match(e.stageTimestamp, TIMESTAMP);
      t.ok(e.stageTimestamp >= e.requestReceivedTimestamp, 'stage is not before receipt');
    }
    t.match(mutate, {
      requestURI: '/mutate',
      responseStatus: { code: 200 },
      annotations: {
        'portcullis.io/decision': 'allow',
        'portcullis.io/violations': 'require-seccomp=mutate',
        'portcullis.io/endpoint': 'mutate',
      },
    });
    t.match(allow, {
      responseStatus: { code: 200 },
      annotations: { 'portcullis.io/decision': 'allow', 'portcullis.io/dry-run': 'true' },
    });
    t.notOk(
      allow?.annotations['portcullis.io/violations'],
      'no violations annotation when nothing was violated',
    );
    t.match(invalid, {
      verb: 'post',
      user: {},
      responseStatus: { code: 400 },
      annotations: { 'portcullis.io/version': PACKAGE_VERSION },
    });
    t.notOk(invalid?.objectRef);
  },
);

t.test(
  'a namespaced binding and a cluster-scoped one: objectRef carries group, name and namespace as given',
  async (t) => {
    const srv = await startServer({ certificates });
    t.teardown(() => srv.close());
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: '0a1b2c3d-0000-4000-8000-000000000001',
        kind: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding' },
        resource: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'rolebindings' },
        name: 'ops-admin',
        namespace: 'shop',
        operation: 'UPDATE',
        userInfo: { username: 'alice' },
        object: {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'ops-admin', namespace: 'shop' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
          subjects: [{ kind: 'Group', name: 'ops', apiGroup: 'rbac.authorization.k8s.io' }],
        },
      },
    };
    await srv.request('/validate', { body: review });
    t.match(srv.audit.events.at(-1), {
      verb: 'update',
      user: { username: 'alice' },
      objectRef: {
        resource: 'rolebindings',
        apiGroup: 'rbac.authorization.k8s.io',
        apiVersion: 'v1',
        namespace: 'shop',
        name: 'ops-admin',
      },
    });
  },
);

// A local collector: answers each POST with the next status in `statuses` (200 once they run out),
// or holds it while `hold` is set.
interface Collector {
  url: string;
  batches: { items: AuditEvent[]; kind: string; apiVersion: string }[];
  posts: number;
  statuses: number[];
  hold: boolean;
  release(): void;
  close(): Promise<void>;
}

async function collector(): Promise<Collector> {
  const held: (() => void)[] = [];
  const state: Collector = {
    url: '',
    batches: [],
    posts: 0,
    statuses: [],
    hold: false,
    release: () => {
      state.hold = false;
      for (const answer of held.splice(0)) answer();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
  const server: Server = createHttpsServer(
    { key: certificates.key, cert: certificates.cert },
    (req: IncomingMessage, res: ServerResponse) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        state.posts++;
        const answer = () => {
          const status = state.statuses.shift() ?? 200;
          if (status === 200)
            state.batches.push(
              JSON.parse(Buffer.concat(parts).toString('utf8')) as Collector['batches'][number],
            );
          res.writeHead(status).end();
        };
        if (state.hold) held.push(answer);
        else answer();
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  state.url = `https://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/audit`;
  return state;
}

function events(n: number, from = 0): AuditEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `id-${from + i}`,
    stage: 'ResponseComplete',
    requestURI: '/validate',
    verb: 'create',
    user: {},
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: '2026-11-23T10:00:00.000000Z',
    stageTimestamp: '2026-11-23T10:00:00.000100Z',
    annotations: {},
  }));
}

function webhookSink(
  c: Collector,
  options: Omit<WebhookSinkOptions, 'url' | 'ca'>,
): { sink: WebhookSink; metrics: Metrics; logs: () => Record<string, unknown>[] } {
  const metrics = createMetrics();
  const captured = captureLog();
  const sink = new WebhookSink(
    { url: c.url, ca: certificates.ca.cert, ...options },
    metrics.audit,
    captured.log,
  );
  return { sink, metrics, logs: () => captured.lines() };
}

t.test(
  '--audit-log: lines reach the file while it is open, one window after another, in order',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-audit-window-'));
    const path = join(dir, 'audit.log');
    const metrics = createMetrics();
    const file = await JsonLinesSink.openFile(path, metrics.audit, pino({ level: 'silent' }));
    t.teardown(() => file.close());
    const onDisk = async (): Promise<string[]> =>
      (await readFile(path, 'utf8')).split('\n').filter((l) => l !== '');
    const [first, second, third] = events(3);
    // Each write starts a new flush window after the last one was written: a window that could not
    // be re-armed would leave the later lines in memory until close().
    for (const [i, event] of [first, second, third].entries()) {
      file.write(event!);
      await until(async () => (await onDisk()).length === i + 1, 5000, `line ${i + 1} on disk`);
    }
    t.strictSame(
      (await onDisk()).map((l) => (JSON.parse(l) as AuditEvent).auditID),
      [first, second, third].map((e) => e!.auditID),
    );
    t.equal(await count(metrics.auditWritten, 'file'), 3, 'counted written when handed to the file');
  },
);

t.test(
  '--audit-log: past 32 MiB not yet on disk, events are dropped, counted and logged, never queued without bound',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-audit-bound-'));
    const path = join(dir, 'audit.log');
    const metrics = createMetrics();
    const captured = captureLog();
    const file = await JsonLinesSink.openFile(path, metrics.audit, captured.log);
    // 600 events of ~64 KiB in one event-loop turn: nothing reaches the disk before the turn ends,
    // so the bound, not the disk, decides how many are kept (32 MiB holds 511 of them).
    const big = 'x'.repeat(64 * 1024);
    const burst = events(600).map((e) => ({ ...e, annotations: { 'test/padding': big } }));
    for (const e of burst) file.write(e);
    const written = await count(metrics.auditWritten, 'file');
    const dropped = await count(metrics.auditDropped, 'file');
    t.equal(written, 0, 'nothing is counted written before it is handed to the file');
    t.ok(dropped > 0 && dropped < 600, `some dropped (${dropped}), not all`);
    await file.close();
    file.write(events(1)[0]!);

    const onDisk = (await readFile(path, 'utf8')).split('\n').filter((l) => l !== '');
    t.equal(onDisk.length, 600 - dropped, 'every event kept is on disk after close()');
    t.equal(await count(metrics.auditWritten, 'file'), onDisk.length);
    t.equal(await count(metrics.auditDropped, 'file'), dropped + 1, 'a write after close() is a drop too');
    t.strictSame(
      onDisk.map((l) => (JSON.parse(l) as AuditEvent).auditID),
      burst.slice(0, onDisk.length).map((e) => e.auditID),
      'the oldest are kept, in order',
    );
    t.match(
      captured.lines().filter((l) => l['msg'] === 'audit events dropped'),
      [{ sink: 'file', reason: 'destination buffer full' }],
    );
  },
);

t.test('webhook: EventList batches by size, then by wait, verified with a custom CA', async (t) => {
  const c = await collector();
  t.teardown(() => c.close());
  const { sink, metrics } = webhookSink(c, { batchSize: 3, maxWaitMs: 50 });
  for (const e of events(7)) sink.write(e);
  await until(() => c.batches.length === 3);
  t.strictSame(
    c.batches.map((b) => b.items.length),
    [3, 3, 1],
  );
  t.match(c.batches[0], { kind: 'EventList', apiVersion: 'audit.k8s.io/v1' });
  t.strictSame(
    c.batches.flatMap((b) => b.items.map((e) => e.auditID)),
    events(7).map((e) => e.auditID),
    'in order, none lost',
  );
  await sink.close();
  t.equal(await count(metrics.auditWritten, 'webhook'), 7);
  t.equal(await count(metrics.auditDropped, 'webhook'), 0);
});

t.test('webhook: a collector that fails is retried with backoff; nothing is lost', async (t) => {
  const c = await collector();
  t.teardown(() => c.close());
  c.statuses = [503, 500, 429];
  const { sink, metrics } = webhookSink(c, { batchSize: 10, maxWaitMs: 10, initialBackoffMs: 10 });
  for (const e of events(4)) sink.write(e);
  await until(() => c.batches.length === 1);
  t.equal(c.posts, 4, 'three failures, then delivered');
  t.equal(c.batches[0]?.items.length, 4);
  await sink.close();
  t.equal(await count(metrics.auditWritten, 'webhook'), 4);
  t.equal(await count(metrics.auditDropped, 'webhook'), 0);
});

t.test('webhook: a batch the collector refuses (4xx) is dropped without retrying, and counted', async (t) => {
  const c = await collector();
  t.teardown(() => c.close());
  c.statuses = [400];
  const { sink, metrics, logs } = webhookSink(c, { batchSize: 2, maxWaitMs: 10, initialBackoffMs: 10 });
  for (const e of events(2)) sink.write(e);
  await sink.close();
  t.equal(c.posts, 1);
  t.equal(await count(metrics.auditDropped, 'webhook'), 2);
  t.match(logs(), [
    { msg: 'audit events dropped', sink: 'webhook', dropped: 2, reason: 'HTTP 400 after 1 attempt(s)' },
  ]);
});

t.test('webhook: a full queue drops the newest events, counts and logs them, and never blocks', async (t) => {
  const c = await collector();
  t.teardown(() => c.close());
  c.hold = true;
  const { sink, metrics, logs } = webhookSink(c, { batchSize: 2, maxWaitMs: 10, maxQueue: 5 });
  for (const e of events(2)) sink.write(e);
  await until(() => c.posts === 1); // the first batch is in flight and held
  for (const e of events(10, 2)) sink.write(e); // 5 fit in the queue, 5 do not
  t.equal(await count(metrics.auditDropped, 'webhook'), 5);
  c.release();
  await until(() => c.batches.length === 4);
  c.release();
  await sink.close();
  t.strictSame(
    c.batches.flatMap((b) => b.items.map((e) => e.auditID)),
    ['id-0', 'id-1', 'id-2', 'id-3', 'id-4', 'id-5', 'id-6'],
  );
  t.equal(await count(metrics.auditWritten, 'webhook'), 7);
  t.equal(await count(metrics.auditDropped, 'webhook'), 5);
  t.match(
    logs().filter((l) => l['msg'] === 'audit events dropped'),
    [
      { sink: 'webhook', dropped: 1, reason: 'queue full' },
      { sink: 'webhook', dropped: 4, reason: 'queue full' },
    ],
    'the first drop is logged at once, the rest once more, not one line each',
  );
});

t.test(
  'webhook: close() gives up at its deadline on a collector that never answers, and counts the loss',
  async (t) => {
    const c = await collector();
    t.teardown(() => c.close());
    c.hold = true;
    const { sink, metrics } = webhookSink(c, { batchSize: 2, maxWaitMs: 10, closeTimeoutMs: 200 });
    for (const e of events(5)) sink.write(e);
    await sink.close();
    t.equal(await count(metrics.auditWritten, 'webhook'), 0);
    t.equal(await count(metrics.auditDropped, 'webhook'), 5);
    sink.write(events(1)[0]!);
    t.equal(await count(metrics.auditDropped, 'webhook'), 6, 'an event after close is counted as dropped');
  },
);

t.test(
  'webhook behind the server: a stuck collector never delays an answer; drops show in /metrics',
  async (t) => {
    const c = await collector();
    t.teardown(() => c.close());
    c.hold = true;
    const metrics = createMetrics();
    const sink = new WebhookSink(
      // A long wait: batches go out only when full, so which events are in flight is known.
      {
        url: c.url,
        ca: certificates.ca.cert,
        batchSize: 5,
        maxWaitMs: 60_000,
        maxQueue: 10,
        closeTimeoutMs: 5000,
      },
      metrics.audit,
      pino({ level: 'silent' }),
    );
    const srv = await startServer({ certificates, sinks: [sink], metrics });
    const replies = [];
    for (let i = 0; i < 30; i++) replies.push(await srv.request('/validate', { body: podCreateReview() }));
    t.ok(
      replies.every((r) => r.status === 200),
      'every request answered while the collector holds',
    );
    t.equal(srv.audit.events.length, 30);

    const text = (await srv.request('/metrics')).text;
    t.match(
      text,
      'portcullis_audit_events_dropped_total{sink="webhook"} 15',
      '5 in flight, 10 queued, 15 dropped',
    );
    c.release();
    await until(() => c.batches.length === 3);
    await srv.close();
    t.equal(await count(metrics.auditWritten, 'webhook'), 15);
    t.equal(await count(metrics.auditDropped, 'webhook'), 15);
    t.equal(await count(metrics.auditWritten, 'memory'), 0, 'the in-memory test sink keeps no counters');
  },
);
