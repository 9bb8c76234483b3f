// Shutdown with requests in flight: new connections are refused, the requests already being
// received are answered in full, every audit event is flushed, and `serve` exits 0 on SIGTERM.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import t from 'tap';
import { JsonLinesSink } from '../../src/audit/sink.js';
import { createMetrics } from '../../src/server/metrics.js';
import {
  admissionResponse,
  localhostCertificates,
  podCreateReview,
  request,
  startServer,
  type Reply,
} from '../helpers/server.js';
import { PACKAGE_VERSION } from '../helpers/package.js';
import { until } from '../helpers/until.js';

/**
 * A request in flight until `finish`: it asks for `100 Continue`, which the server sends once it has
 * parsed the headers, so `started` means the server is working on it; then half the body goes.
 */
function inFlight(url: string, ca: string, body: string) {
  let done: (reply: Reply) => void = () => undefined;
  let failed: (err: unknown) => void = () => undefined;
  const reply = new Promise<Reply>((resolve, reject) => {
    done = resolve;
    failed = reject;
  });
  const req = https.request(
    url,
    {
      method: 'POST',
      ca,
      agent: false,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        expect: '100-continue',
      },
    },
    (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        done({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: () => JSON.parse(text) as unknown,
          serialNumber: '',
        });
      });
    },
  );
  req.on('error', failed);
  const half = Math.floor(body.length / 2);
  const started = once(req, 'continue').then(() => {
    req.write(body.slice(0, half));
  });
  return {
    started,
    finish: () => {
      req.end(body.slice(half));
      return reply;
    },
  };
}

const refused = async (url: string, ca: string): Promise<boolean> => {
  try {
    await request(url, { ca });
    return false;
  } catch (err) {
    return err instanceof Error && 'code' in err && err.code === 'ECONNREFUSED';
  }
};

const certificates = await localhostCertificates();

t.test('shutdown(): stop accepting, answer what is in flight, flush audit', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-shutdown-'));
  const path = join(dir, 'audit.log');
  const metrics = createMetrics();
  const file = await JsonLinesSink.openFile(path, metrics.audit, pino({ level: 'silent' }));
  const srv = await startServer({ certificates, sinks: [file], metrics });
  const keepAlive = new https.Agent({ keepAlive: true, ca: srv.ca });
  t.teardown(() => {
    keepAlive.destroy();
  });
  await srv.request('/healthz', { agent: keepAlive });

  const body = JSON.stringify(podCreateReview());
  const pending = Array.from({ length: 5 }, () => inFlight(`${srv.origin}/validate`, srv.ca, body));
  await Promise.all(pending.map((p) => p.started));

  const stopped = srv.server.shutdown();
  await until(() => refused(`${srv.origin}/healthz`, srv.ca));
  await t.rejects(srv.request('/healthz', { agent: keepAlive }), 'an idle keep-alive connection is closed');

  const replies = await Promise.all(pending.map((p) => p.finish()));
  for (const reply of replies) {
    t.equal(reply.status, 200);
    t.equal(admissionResponse(reply).allowed, false, 'judged in full');
    t.equal(reply.headers['connection'], 'close');
  }
  await stopped;
  const lines = (await readFile(path, 'utf8')).split('\n').filter((l) => l !== '');
  t.equal(lines.length, 5, 'every answer in flight has its event on disk');
  t.equal(srv.audit.closed, true, 'sinks closed');
});

t.test('serve: SIGTERM with requests in flight answers them, flushes the audit log, exits 0', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-sigterm-'));
  const auditLog = join(dir, 'audit.log');
  const entry = fileURLToPath(new URL('../helpers/portcullis.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    [...process.execArgv, entry, 'serve', '--port', '0', '--host', '127.0.0.1', '--audit-log', auditLog],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = once(child, 'exit');

  await until(() => /"msg":"listening"/.test(stdout), 60_000);
  const listening = stdout
    .split('\n')
    .filter((l) => l.includes('"msg":"listening"'))
    .map((l) => JSON.parse(l) as { port: number })[0];
  const starting: unknown = JSON.parse(
    stdout.split('\n').find((l) => l.includes('"msg":"portcullis starting"')) ?? '{}',
  );
  t.match(
    starting,
    { version: PACKAGE_VERSION, node: process.version },
    'the first log line names the version',
  );
  const caFile = /its CA is (\S+)/.exec(stderr)?.[1];
  t.ok(caFile, 'the CA file is printed');
  const ca = await readFile(caFile ?? '', 'utf8');
  const origin = `https://127.0.0.1:${listening?.port ?? 0}`;

  const done = await request(`${origin}/validate`, { ca, body: podCreateReview() });
  t.equal(done.status, 200);
  const body = JSON.stringify(podCreateReview());
  const pending = Array.from({ length: 5 }, () => inFlight(`${origin}/mutate`, ca, body));
  await Promise.all(pending.map((p) => p.started));

  child.kill('SIGTERM');
  await until(() => stdout.includes('"msg":"shutting down"'));
  await until(() => refused(`${origin}/healthz`, ca));
  const replies = await Promise.all(pending.map((p) => p.finish()));
  for (const reply of replies) {
    t.equal(reply.status, 200);
    t.equal(admissionResponse(reply).patchType, 'JSONPatch', 'answered in full');
  }

  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  t.equal(signal, null);
  t.equal(code, 0, 'exit 0');
  t.match(stdout, '"msg":"shut down"');
  const lines = (await readFile(auditLog, 'utf8')).split('\n').filter((l) => l !== '');
  t.equal(lines.length, 6, 'one event per answer, all flushed');
});
