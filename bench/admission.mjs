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
// Four processes: this one (orchestration and measurement only), the load generator
// (bench/load.mjs), Portcullis and the baseline, both started the same way (same node, cert, key,
// TLS minimum version, body limit and keep-alive timeout) and loaded by the same client with the
// same body. On a small machine the client and the server share the CPU, so req/s is partly the
// client's; each run therefore also reports what the numbers rest on: the server's CPU time per
// request (user + system, all its threads, from /proc), how busy the client was, and how much CPU
// processes outside the bench took meanwhile (a busy machine slows both servers, but not alike).
//
// Plain ESM over dist/ so it needs no TypeScript loader; `npm run bench` builds first.

import { fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { BODY_LIMIT, KEEP_ALIVE_TIMEOUT_MS } from '../dist/server/server.js';
import { generateCertificates } from '../dist/tls/certs.js';
import { imageNode } from './image-node.mjs';

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
/** USER_HZ: /proc reports CPU time in ticks of 1/100 s on every Linux architecture Node runs on. */
const TICK_MS = 10;

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

// The node the image runs Portcullis with (its base image's major, its ENTRYPOINT's flags): what
// ships is what is measured. The baseline runs the same way, so the ratio prices code only.
const NODE = imageNode(ROOT);

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
  const client = await startLoadGenerator();
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

  for (const target of [portcullis, baseline]) await load(client, target, allowedBody, WARMUP_S);

  const rounds = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate who goes first, so drift in the machine's load falls on both.
    const order = round % 2 === 1 ? [portcullis, baseline] : [baseline, portcullis];
    for (const target of order) rounds.push({ round, ...(await load(client, target, allowedBody, ROUND_S)) });
  }
  const denied = await load(client, portcullis, deniedBody, ROUND_S);
  const fresh = [];
  for (const target of [portcullis, baseline])
    fresh.push(await newConnectionPerRequest(client, target, ca, allowedBody));

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
    `Portcullis bench: servers on node ${NODE.version}, ${availableParallelism()} cores, load average ` +
      `${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} at the end`,
    `servers run as the image runs them: node ${NODE.flags.join(' ') || '(no flags)'}`,
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
  const summary = (name) => ({
    rps: mean(of(name).map((r) => r.rps)),
    p50: median(of(name).map((r) => r.p50)),
    // p99 over every response of every round, not an average of per-round p99s.
    p99: percentile(concat(of(name).map((r) => r.latencies)), 0.99),
    cpuUs: mean(of(name).map((r) => r.cpu.serverUsPerRequest)),
    clientPct: mean(of(name).map((r) => r.cpu.clientCorePct)),
    othersPct: mean(of(name).map((r) => r.cpu.othersMachinePct)),
  });
  const p = summary('portcullis');
  const b = summary('baseline');
  const ratio = p.rps / b.rps;
  const cpuRatio = b.cpuUs / p.cpuUs;
  const rss = memory.portcullis;
  // VmHWM can trail a sampled VmRSS a little (the kernel folds per-thread counters in lazily).
  const peakMiB = Math.max(rss.hwm ?? 0, rss.maxSampled) / MiB;
  const met = {
    ratio: ratio >= TARGETS.ratio,
    p99: p.p99 <= TARGETS.p99Ms,
    rss: Number.isFinite(peakMiB) && peakMiB <= TARGETS.rssMiB,
  };

  const rows = [['', 'req/s', 'p50 ms', 'p99 ms', 'server µs/req', 'client %', 'others %', 'note']];
  const row = (label, r, note) => [
    label,
    fmt(r.rps, 0),
    fmt(r.p50),
    fmt(r.p99),
    fmt(r.cpuUs ?? r.cpu.serverUsPerRequest, 0),
    fmt(r.clientPct ?? r.cpu.clientCorePct, 0),
    fmt(r.othersPct ?? r.cpu.othersMachinePct, 0),
    note,
  ];
  for (const r of rounds) rows.push(row(`round ${r.round} ${r.target}`, r, r.note));
  rows.push(row('portcullis (mean of rounds)', p, ''));
  rows.push(row('baseline (mean of rounds)', b, ''));
  rows.push(row('portcullis, denied review', denied, denied.note));
  for (const f of fresh) rows.push(row(`${f.target}, new TLS conn/request`, f, f.note));
  console.log('');
  console.log(table(rows));
  console.log(
    "server µs/req: the server process's CPU time (all threads) per request; client %: the load " +
      "generator's share of one core; others %: the machine taken by processes outside the bench",
  );
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
  console.log(
    `server CPU per request: portcullis ${fmt(p.cpuUs, 0)} µs, baseline ${fmt(b.cpuUs, 0)} µs ` +
      `(baseline/portcullis ${fmt(cpuRatio, 3)}); other processes took ${fmt(mean([p.othersPct, b.othersPct]), 0)} % ` +
      'of the machine during the rounds',
  );
  console.log(`p99 ${fmt(p.p99)} ms (target ≤ ${TARGETS.p99Ms} ms): ${mark(met.p99)}`);
  console.log(`RSS peak ${fmt(peakMiB, 1)} MiB (target ≤ ${TARGETS.rssMiB} MiB): ${mark(met.rss)}`);
  console.log(`bench took ${fmt((performance.now() - started) / 1000, 1)} s`);
  console.log(
    JSON.stringify({
      ok: failures.length === 0,
      node: NODE.version,
      nodeFlags: NODE.flags,
      cores: availableParallelism(),
      loadavg: loadavg().map((l) => Number(l.toFixed(2))),
      payloadBytes: Buffer.byteLength(allowedBody),
      connections: CONNECTIONS,
      portcullis: json(p),
      baseline: json(b),
      ratio: round(ratio, 3),
      cpuRatio: round(cpuRatio, 3),
      denied: json(denied),
      newConnectionPerRequest: Object.fromEntries(
        fresh.map((f) => [f.target, { ...json(f), requests: f.count, resumed: f.resumed }]),
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

/** A summary or a run as it goes into the JSON line. */
function json(r) {
  const cpu = r.cpu ?? {
    serverUsPerRequest: r.cpuUs,
    clientCorePct: r.clientPct,
    othersMachinePct: r.othersPct,
  };
  return {
    rps: round(r.rps),
    p50Ms: round(r.p50, 2),
    p99Ms: round(r.p99, 2),
    serverCpuUsPerRequest: round(cpu.serverUsPerRequest, 1),
    clientCorePct: round(cpu.clientCorePct),
    othersMachinePct: round(cpu.othersMachinePct),
  };
}

/** Starts a server child; its output is kept (the tail) for when it fails. */
function start(name, port, args) {
  const child = spawn(NODE.path, [...NODE.flags, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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

/** Forks bench/load.mjs and waits until it can take a job. */
async function startLoadGenerator() {
  const child = fork(join(ROOT, 'bench/load.mjs'), [], {
    cwd: ROOT,
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const client = { name: 'load generator', process: child, pending: undefined };
  children.push(client);
  child.on('message', (message) => {
    if (message.ready) return;
    const pending = client.pending;
    client.pending = undefined;
    if (message.ok) pending?.resolve(message.result);
    else pending?.reject(new Error(`load generator: ${message.error}`));
  });
  child.once('exit', (code, signal) => {
    client.pending?.reject(new Error(`load generator exited (${code ?? signal})`));
  });
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('error', reject);
  });
  return client;
}

/** Hands the load generator one job and measures the server (RSS, CPU) and the machine meanwhile. */
async function measured(client, target, job) {
  const sampler = sampleRss(target);
  const before = cpuSnapshot(client, target);
  const result = await new Promise((resolve, reject) => {
    client.pending = { resolve, reject };
    client.process.send(job);
  });
  clearInterval(sampler);
  return { result, cpu: cpuSince(before, cpuSnapshot(client, target), result.requests) };
}

/** One autocannon run at CONNECTIONS keep-alive connections. */
async function load(client, target, body, seconds) {
  const { result, cpu } = await measured(client, target, {
    kind: 'keepAlive',
    url: `https://127.0.0.1:${target.port}/validate`,
    body,
    connections: CONNECTIONS,
    seconds,
  });
  if (target.name === 'portcullis') target.answered += result.requests;
  const problems = [];
  if (result.non2xx > 0) problems.push(`${result.non2xx} non-2xx`);
  if (result.errors > 0) problems.push(`${result.errors} errors`);
  if (result.timeouts > 0) problems.push(`${result.timeouts} timeouts`);
  if (problems.length > 0) failures.push(`${target.name}: ${problems.join(', ')}`);
  return {
    target: target.name,
    rps: result.requests / result.duration,
    p50: percentile(result.latencies, 0.5),
    p99: percentile(result.latencies, 0.99),
    latencies: result.latencies,
    cpu,
    note: problems.join(', '),
  };
}

/** Requests one at a time, each with a full, verified handshake (bench/load.mjs says how). */
async function newConnectionPerRequest(client, target, ca, body) {
  const { result, cpu } = await measured(client, target, {
    kind: 'newConnection',
    port: target.port,
    ca,
    body,
    seconds: NEW_CONNECTION_S,
    max: NEW_CONNECTION_MAX,
  });
  if (target.name === 'portcullis') target.answered += result.requests;
  if (result.failed > 0) failures.push(`${target.name}: ${result.failed} non-200 answers on new connections`);
  if (result.reusedSockets > 0) {
    failures.push(`${target.name}: ${result.reusedSockets} requests reused a connection`);
  }
  const handshakes = result.requests - result.reusedSockets;
  return {
    target: target.name,
    rps: result.requests / result.duration,
    p50: percentile(result.latencies, 0.5),
    p99: percentile(result.latencies, 0.99),
    count: result.requests,
    resumed: result.resumed,
    cpu,
    note: `${result.requests} requests, ${handshakes} handshakes, ${result.resumed} resumed, 1 at a time`,
  };
}

/**
 * CPU time so far, in ms: the server's and the load generator's (every thread: /proc/PID/stat),
 * this process's, and the whole machine's busy time (/proc/stat), so that what other processes
 * took can be told apart.
 */
function cpuSnapshot(client, target) {
  const self = process.cpuUsage();
  return {
    at: performance.now(),
    server: processCpuMs(target.process.pid),
    client: processCpuMs(client.process.pid),
    self: (self.user + self.system) / 1000,
    machine: machineBusyMs(),
  };
}

function cpuSince(before, after, requests) {
  const wallMs = after.at - before.at;
  const d = (key) =>
    after[key] === undefined || before[key] === undefined ? undefined : after[key] - before[key];
  const server = d('server');
  const client = d('client');
  const machine = d('machine');
  const others =
    machine === undefined || server === undefined || client === undefined
      ? undefined
      : Math.max(0, machine - server - client - d('self'));
  return {
    /** The server's CPU per request answered, µs: what the answer costs, whatever the client managed. */
    serverUsPerRequest: server === undefined || requests === 0 ? undefined : (server * 1000) / requests,
    /** The load generator's share of one core: near 100 %, it is what limits req/s. */
    clientCorePct: client === undefined ? undefined : (100 * client) / wallMs,
    /** CPU taken by processes outside the bench, as a share of the whole machine. */
    othersMachinePct: others === undefined ? undefined : (100 * others) / (wallMs * availableParallelism()),
  };
}

/** utime + stime of a process (all threads), ms; undefined where there is no /proc. */
function processCpuMs(pid) {
  try {
    // The command name (field 2) may hold spaces; the fields after it are space-separated.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** Busy time of all CPUs together (everything but idle and iowait), ms. */
function machineBusyMs() {
  try {
    // cpu  user nice system idle iowait irq softirq steal …
    const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]
      .trim()
      .split(/\s+/)
      .map(Number);
    return (user + nice + system + irq + softirq + steal) * TICK_MS;
  } catch {
    return undefined;
  }
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

/** Latencies of several runs as one array. */
function concat(arrays) {
  const all = new Float64Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    all.set(a, at);
    at += a.length;
  }
  return all;
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
