// `npm run bench`: Portcullis' /validate under keep-alive TLS load, against a bare fastify handler
// that only parses the body and answers allowed (bench/baseline-server.mjs), in the same run and
// alternating, so a busy machine slows both alike. Payload: the Pod CREATE a ReplicaSet controller
// sends (bench/fixtures/pod-create-review.json, ~5 KB, allowed by rules/default.yaml).
//
// Reports req/s, the ratio portcullis/baseline, p50/p99 latency at 16 connections, a denied-review
// run, one run with a new TLS connection per request (the handshake's price), the server's RSS, and
// audit events written against requests answered. Prints a table, then one JSON line. Loopback
// only; bounded to 90 s. The targets (ratio ≥ 0.85, p99 ≤ 10 ms, RSS ≤ 100 MiB) are reported, not
// enforced: exit 1 only when the bench itself fails (a server dies, a non-2xx answer, a wrong verdict).
//
// Plain ESM over dist/ so it needs no TypeScript loader; `npm run bench` builds first.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { BODY_LIMIT, KEEP_ALIVE_TIMEOUT_MS } from '../dist/server/server.js';
import { generateCertificates } from '../dist/tls/certs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONNECTIONS = 16;
const WARMUP_S = 3;
const ROUNDS = 3;
const ROUND_S = 5;
const NEW_CONNECTION_S = 4;
const NEW_CONNECTION_MAX = 2000;
const DEADLINE_MS = 90_000;
const TARGETS = { ratio: 0.85, p99Ms: 10, rssMiB: 100 };
const MiB = 1024 * 1024;

const started = performance.now();
const children = [];
const failures = [];

// Whatever happens, the bench ends within its bound and leaves no server behind.
const deadline = setTimeout(() => {
  process.stderr.write(`bench: over ${DEADLINE_MS / 1000} s, stopping\n`);
  for (const child of children) child.process.kill('SIGKILL');
  process.exit(1);
}, DEADLINE_MS);
deadline.unref();

const fixture = JSON.parse(readFileSync(join(ROOT, 'bench/fixtures/pod-create-review.json'), 'utf8'));
const allowedBody = JSON.stringify(fixture);
const deniedBody = JSON.stringify(deniedVariant(fixture));

const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-'));
try {
  await main();
} finally {
  for (const child of children) child.process.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
}
clearTimeout(deadline);
process.exitCode = failures.length > 0 ? 1 : 0;

async function main() {
  const certs = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  const auditFile = join(dir, 'audit.jsonl');
  await writeFile(certFile, certs.cert);
  await writeFile(keyFile, certs.key, { mode: 0o600 });
  const ca = certs.ca.cert;

  const portcullisPort = await freePort();
  const portcullis = start('portcullis', portcullisPort, [
    join(ROOT, 'bin/portcullis'),
    'serve',
    '--rules',
    join(ROOT, 'rules/default.yaml'),
    '--tls-cert',
    certFile,
    '--tls-key',
    keyFile,
    '--host',
    '127.0.0.1',
    '--port',
    String(portcullisPort),
    '--audit-log',
    auditFile,
  ]);
  const baselinePort = await freePort();
  const baseline = start('baseline', baselinePort, [
    join(ROOT, 'bench/baseline-server.mjs'),
    certFile,
    keyFile,
    String(baselinePort),
    String(BODY_LIMIT),
    String(KEEP_ALIVE_TIMEOUT_MS),
  ]);
  await Promise.all([ready(portcullis, ca), ready(baseline, ca)]);
  // Before any load: what the process costs at rest, to tell footprint from growth under load.
  for (const target of [portcullis, baseline]) target.rss.idle = procStatus(target).rss;

  // One verified request each before any load: the right verdicts, over a certificate that checks.
  await expectVerdict(portcullis, ca, allowedBody, true);
  await expectVerdict(portcullis, ca, deniedBody, false);
  await expectVerdict(baseline, ca, allowedBody, true);
  if (failures.length > 0) return report(undefined);

  for (const target of [portcullis, baseline]) await load(target, allowedBody, WARMUP_S);

  const rounds = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate who goes first, so drift in the machine's load falls on both.
    const order = round % 2 === 1 ? [portcullis, baseline] : [baseline, portcullis];
    for (const target of order) rounds.push({ round, ...(await load(target, allowedBody, ROUND_S)) });
  }
  const denied = await load(portcullis, deniedBody, ROUND_S);
  const fresh = [];
  for (const target of [portcullis, baseline])
    fresh.push(await newConnectionPerRequest(target, ca, allowedBody));

  const memory = Object.fromEntries(
    [portcullis, baseline].map((t) => [t.name, { ...t.rss, ...procStatus(t) }]),
  );
  const answered = portcullis.answered;
  await Promise.all([stop(portcullis), stop(baseline)]);
  const auditEvents = (await readFile(auditFile, 'utf8')).split('\n').filter((l) => l !== '').length;
  report({ rounds, denied, fresh, memory, audit: { events: auditEvents, answered } });
}

function report(results) {
  const header = [
    `Portcullis bench: node ${process.version}, ${availableParallelism()} cores, load average ` +
      `${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} at the end`,
    `payload: Pod CREATE AdmissionReview, ${Buffer.byteLength(allowedBody)} B (denied variant ` +
      `${Buffer.byteLength(deniedBody)} B); ${CONNECTIONS} keep-alive connections; ${ROUNDS} rounds × ${ROUND_S} s ` +
      `after ${WARMUP_S} s warm-up each`,
  ];
  console.log(header.join('\n'));
  for (const failure of failures) console.log(`FAILED: ${failure}`);
  if (results === undefined) {
    console.log(JSON.stringify({ ok: false, failures }));
    return;
  }

  const { rounds, denied, fresh, memory, audit } = results;
  const of = (name) => rounds.filter((r) => r.target === name);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const p = {
    rps: mean(of('portcullis').map((r) => r.rps)),
    p50: median(of('portcullis').map((r) => r.p50)),
  };
  const b = { rps: mean(of('baseline').map((r) => r.rps)), p50: median(of('baseline').map((r) => r.p50)) };
  // p99 over every response of every round, not an average of per-round p99s.
  p.p99 = percentile(
    of('portcullis').flatMap((r) => r.latencies),
    0.99,
  );
  b.p99 = percentile(
    of('baseline').flatMap((r) => r.latencies),
    0.99,
  );
  const ratio = p.rps / b.rps;
  const rss = memory.portcullis;
  // VmHWM can trail a sampled VmRSS a little (the kernel folds per-thread counters in lazily).
  const peakMiB = Math.max(rss.hwm ?? 0, rss.maxSampled) / MiB;
  const met = {
    ratio: ratio >= TARGETS.ratio,
    p99: p.p99 <= TARGETS.p99Ms,
    rss: Number.isFinite(peakMiB) && peakMiB <= TARGETS.rssMiB,
  };

  const rows = [['', 'req/s', 'p50 ms', 'p99 ms', 'note']];
  for (const r of rounds)
    rows.push([`round ${r.round} ${r.target}`, fmt(r.rps, 0), fmt(r.p50), fmt(r.p99), r.note]);
  rows.push(['portcullis (mean of rounds)', fmt(p.rps, 0), fmt(p.p50), fmt(p.p99), '']);
  rows.push(['baseline (mean of rounds)', fmt(b.rps, 0), fmt(b.p50), fmt(b.p99), '']);
  rows.push(['portcullis, denied review', fmt(denied.rps, 0), fmt(denied.p50), fmt(denied.p99), denied.note]);
  for (const f of fresh) {
    rows.push([`${f.target}, new TLS conn/request`, fmt(f.rps, 0), fmt(f.p50), fmt(f.p99), f.note]);
  }
  console.log('');
  console.log(table(rows));
  console.log('');
  for (const [name, m] of Object.entries(memory)) {
    console.log(
      `${name} RSS: idle after start ${mib(m.idle)} MiB, max under load ${mib(m.maxSampled)} MiB, ` +
        `peak ${mib(m.hwm)} MiB (VmHWM), at the end ${mib(m.rss)} MiB`,
    );
  }
  console.log(
    `audit events written: ${audit.events} for ${audit.answered} requests answered ` +
      '(load-generator counts; up to 16 per run can still be in flight when a run stops)',
  );
  console.log('');
  const mark = (ok) => (ok ? 'met' : 'MISSED');
  console.log(`ratio ${fmt(ratio, 3)} (target ≥ ${TARGETS.ratio}): ${mark(met.ratio)}`);
  console.log(`p99 ${fmt(p.p99)} ms (target ≤ ${TARGETS.p99Ms} ms): ${mark(met.p99)}`);
  console.log(`RSS peak ${fmt(peakMiB, 1)} MiB (target ≤ ${TARGETS.rssMiB} MiB): ${mark(met.rss)}`);
  console.log(`bench took ${fmt((performance.now() - started) / 1000, 1)} s`);
  console.log(
    JSON.stringify({
      ok: failures.length === 0,
      node: process.version,
      cores: availableParallelism(),
      loadavg: loadavg().map((l) => Number(l.toFixed(2))),
      payloadBytes: Buffer.byteLength(allowedBody),
      connections: CONNECTIONS,
      portcullis: { rps: round(p.rps), p50Ms: round(p.p50, 2), p99Ms: round(p.p99, 2) },
      baseline: { rps: round(b.rps), p50Ms: round(b.p50, 2), p99Ms: round(b.p99, 2) },
      ratio: round(ratio, 3),
      denied: { rps: round(denied.rps), p50Ms: round(denied.p50, 2), p99Ms: round(denied.p99, 2) },
      newConnectionPerRequest: Object.fromEntries(
        fresh.map((f) => [
          f.target,
          {
            rps: round(f.rps),
            p50Ms: round(f.p50, 2),
            p99Ms: round(f.p99, 2),
            requests: f.count,
            resumed: f.resumed,
          },
        ]),
      ),
      rssMiB: Object.fromEntries(
        Object.entries(memory).map(([name, m]) => [
          name,
          {
            idle: round(m.idle / MiB, 1),
            underLoad: round(m.maxSampled / MiB, 1),
            peak: round(m.hwm / MiB, 1),
          },
        ]),
      ),
      audit,
      targets: { ...TARGETS, met },
      failures,
    }),
  );
}

/** Starts a server child; its output is kept (the tail) for when it fails. */
function start(name, port, args) {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const target = {
    name,
    port,
    process: child,
    output: '',
    exited: undefined,
    answered: 0,
    rss: { maxSampled: 0 },
  };
  const keep = (chunk) => {
    target.output = (target.output + chunk.toString()).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  target.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  children.push(target);
  return target;
}

async function ready(target, ca) {
  const until = performance.now() + 20_000;
  let exited = false;
  void target.exited.then(() => (exited = true));
  while (performance.now() < until && !exited) {
    const answer = await send(target.port, ca, 'GET', '/readyz', undefined).catch(() => undefined);
    if (answer?.status === 200) return;
    await sleep(100);
  }
  throw new Error(`${target.name} did not get ready${exited ? ' (it exited)' : ''}:\n${target.output}`);
}

async function expectVerdict(target, ca, body, allowed) {
  const answer = await send(target.port, ca, 'POST', '/validate', body);
  if (target.name === 'portcullis') target.answered++;
  let verdict;
  try {
    verdict = answer.status === 200 ? JSON.parse(answer.body)?.response?.allowed : undefined;
  } catch {
    verdict = undefined;
  }
  if (verdict !== allowed) {
    failures.push(
      `${target.name}: expected allowed=${allowed}, got HTTP ${answer.status} ${answer.body.slice(0, 300)}`,
    );
  }
}

/** One autocannon run; latencies are taken from each response (autocannon's histogram is whole ms). */
async function load(target, body, seconds) {
  const latencies = [];
  const sampler = sampleRss(target);
  const instance = autocannon({
    url: `https://127.0.0.1:${target.port}/validate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: seconds,
  });
  instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  const result = await instance;
  clearInterval(sampler);
  if (target.name === 'portcullis') target.answered += result.requests.total;
  const problems = [];
  if (result.non2xx > 0) problems.push(`${result.non2xx} non-2xx`);
  if (result.errors > 0) problems.push(`${result.errors} errors`);
  if (result.timeouts > 0) problems.push(`${result.timeouts} timeouts`);
  if (problems.length > 0) failures.push(`${target.name}: ${problems.join(', ')}`);
  return {
    target: target.name,
    rps: result.requests.total / result.duration,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    latencies,
    note: problems.join(', '),
  };
}

/**
 * Sequential requests, each on its own connection with a full handshake: `agent: false` gives every
 * request a fresh socket and no TLS session cache, and the client verifies the chain as the API
 * server does. Checked, not assumed: a reused socket or a resumed session is counted and shown.
 */
async function newConnectionPerRequest(target, ca, body) {
  const latencies = [];
  const seen = new WeakSet();
  let reusedSockets = 0;
  let resumed = 0;
  const sampler = sampleRss(target);
  const t0 = performance.now();
  const until = t0 + NEW_CONNECTION_S * 1000;
  while (latencies.length < NEW_CONNECTION_MAX && performance.now() < until) {
    const begin = performance.now();
    const answer = await send(target.port, ca, 'POST', '/validate', body);
    latencies.push(performance.now() - begin);
    if (answer.status !== 200) failures.push(`${target.name}: HTTP ${answer.status} on a new connection`);
    if (seen.has(answer.socket)) reusedSockets++;
    seen.add(answer.socket);
    if (answer.socket.isSessionReused()) resumed++;
  }
  const elapsed = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  if (target.name === 'portcullis') target.answered += latencies.length;
  if (reusedSockets > 0) failures.push(`${target.name}: ${reusedSockets} requests reused a connection`);
  return {
    target: target.name,
    rps: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    count: latencies.length,
    resumed,
    note: `${latencies.length} requests, ${latencies.length - reusedSockets} handshakes, ${resumed} resumed, 1 at a time`,
  };
}

/** A request over its own verified TLS connection (no agent, no keep-alive). */
function send(port, ca, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca,
        agent: false,
        headers:
          body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), socket: res.socket }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function sampleRss(target) {
  return setInterval(() => {
    const { rss } = procStatus(target);
    if (rss !== undefined) target.rss.maxSampled = Math.max(target.rss.maxSampled, rss);
  }, 200);
}

/** VmRSS and VmHWM (the peak) of a child, in bytes; undefined where there is no /proc. */
function procStatus(target) {
  try {
    const status = readFileSync(`/proc/${target.process.pid}/status`, 'utf8');
    const kib = (field) => {
      const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
      return match === null ? undefined : Number(match[1]) * 1024;
    };
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
  } catch {
    return { rss: undefined, hwm: undefined };
  }
}

/** SIGTERM, as Kubernetes stops a pod: Portcullis drains and flushes its audit file before exiting. */
async function stop(target) {
  target.process.kill('SIGTERM');
  const result = await Promise.race([target.exited, sleep(10_000).then(() => undefined)]);
  if (result === undefined) {
    target.process.kill('SIGKILL');
    failures.push(`${target.name} did not exit within 10 s of SIGTERM`);
  } else if (result.code !== 0) {
    failures.push(
      `${target.name} exited with ${result.code ?? result.signal} after SIGTERM:\n${target.output}`,
    );
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The same Pod with a privileged sidecar from an untrusted registry: two rules deny it. */
function deniedVariant(review) {
  const copy = structuredClone(review);
  copy.request.uid = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
  const sidecar = copy.request.object.spec.containers[1];
  sidecar.image = 'docker.io/library/busybox:1.37';
  sidecar.securityContext = { ...sidecar.securityContext, privileged: true };
  return copy;
}

function percentile(values, q) {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function median(values) {
  return percentile(values, 0.5);
}

function round(value, digits = 0) {
  return value === undefined || !Number.isFinite(value) ? null : Number(value.toFixed(digits));
}

function fmt(value, digits = 2) {
  return value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);
}

function mib(bytes) {
  return fmt(bytes / MiB, 1);
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) =>
          i === 0 || i === r.length - 1 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
