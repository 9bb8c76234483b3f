// `npm run bench:apiserver`: what admission costs the API server. A real kube-apiserver + etcd (the
// end-to-end harness's binaries, built when missing) takes pod creates (`dryRun=All`, so nothing
// is stored and every request runs the whole admission chain) from 16 concurrent clients, under:
//   none        no admission beyond the API server's defaults
//   psa         Pod Security Admission, the namespace labelled enforce=restricted (in process)
//   vap         a ValidatingAdmissionPolicy with the pod concerns of the shipped rules in CEL (in process)
//   bare        the cheapest webhook: fastify over TLS that parses and allows (bench/baseline-server.mjs),
//               one validating webhook for pod CREATE, no selectors, no matchConditions
//   bare-shipped that same server behind Portcullis' webhook configurations: what the configurations
//               alone cost the API server (namespaceSelectors, and each webhook with matchConditions
//               has the object and request converted for CEL before any condition runs)
//   portcullis  Portcullis with its webhook configurations as `kubectl kustomize manifests/base`
//               renders them (only clientConfig rewritten to https://127.0.0.1:PORT) and the shipped rules
// Rounds alternate (each configuration once per round, the order rotated), so drift in the machine's
// load falls on all alike; one more round sends a pod every configuration but none and the bare
// ones deny. Reports req/s, p50, p99, the ratios against none and bare, the p99 each adds over none,
// and the webhook servers' CPU per pod create (user + system from /proc), Portcullis' against the
// bare one's. Loopback only; bounded to 180 s.
// Exit 1 only when the bench itself fails (a wrong verdict, a server that died).
//
// Plain ESM over dist/ so it needs no TypeScript loader; the npm script builds first.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { BODY_LIMIT, KEEP_ALIVE_TIMEOUT_MS } from '../dist/server/server.js';
import { generateCertificates } from '../dist/tls/certs.js';
import { imageNode } from './image-node.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENTS = 16;
const ROUNDS = 3;
const ROUND_S = 4;
const DENIED_S = 3;
const WARMUP_S = 2;
const DEADLINE_MS = 180_000;
const NAMESPACE = 'bench';
const TICK_MS = 10; // USER_HZ: /proc counts CPU time in 1/100 s
const CONFIGS = ['none', 'psa', 'vap', 'bare', 'bare-shipped', 'portcullis'];
/** What each configuration must answer to the denied pod (a privileged container). */
const DENIES = { none: false, psa: true, vap: true, bare: false, 'bare-shipped': false, portcullis: true };

const children = [];
const failures = [];
const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-apiserver-'));
let clusterStarted = false;

const deadline = setTimeout(() => {
  process.stderr.write(`bench:apiserver: over ${DEADLINE_MS / 1000} s, stopping\n`);
  void cleanup().then(() => process.exit(1));
}, DEADLINE_MS);

// The node the image runs Portcullis with (its base image's major, its ENTRYPOINT's flags): what
// ships is what is measured. The baseline runs the same way, so the ratio prices code only.
const NODE = imageNode(ROOT);

try {
  await main();
} catch (err) {
  failures.push(err instanceof Error ? err.message : String(err));
  console.log(`FAILED: ${failures.at(-1)}`);
} finally {
  await cleanup();
  clearTimeout(deadline);
}
process.exitCode = failures.length > 0 ? 1 : 0;

async function cleanup() {
  for (const child of children) child.kill('SIGKILL');
  if (clusterStarted) spawnSync('bash', [join(ROOT, 'test/e2e/stop-cluster.sh'), dir], { stdio: 'ignore' });
  await rm(dir, { recursive: true, force: true });
}

async function main() {
  const started = performance.now();
  const cluster = await startCluster();
  const api = apiClient(cluster);

  const certs = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  await writeFile(certFile, certs.cert);
  await writeFile(keyFile, certs.key, { mode: 0o600 });
  const caBundle = Buffer.from(certs.ca.cert).toString('base64');

  const portcullisPort = await freePort();
  const portcullis = startNode(
    [
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
      // No --audit-log: as the shipped Deployment, audit events go to stdout, here a pipe this
      // process drains as the container runtime would.
    ],
    { drainStdout: true },
  );
  const barePort = await freePort();
  const bare = startNode([
    join(ROOT, 'bench/baseline-server.mjs'),
    certFile,
    keyFile,
    String(barePort),
    String(BODY_LIMIT),
    String(KEEP_ALIVE_TIMEOUT_MS),
  ]);

  must(
    await api('POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NAMESPACE },
    }),
    [201],
  );
  const configurations = {
    none: { on: async () => {}, off: async () => {} },
    psa: psaConfiguration(api),
    vap: vapConfiguration(api),
    bare: webhookConfiguration(api, bareWebhook(`https://127.0.0.1:${barePort}`, caBundle)),
    'bare-shipped': webhookConfiguration(api, shippedWebhooks(`https://127.0.0.1:${barePort}`, caBundle)),
    portcullis: webhookConfiguration(api, shippedWebhooks(`https://127.0.0.1:${portcullisPort}`, caBundle)),
  };

  const allowedBody = JSON.stringify(compliantPod());
  const deniedBody = JSON.stringify(deniedPod());
  const create = (body) => api('POST', `/api/v1/namespaces/${NAMESPACE}/pods?dryRun=All`, body, true);
  const results = [];
  // CPU of each webhook server over the rounds it is called in, against the pod creates they served.
  const servers = { bare: bare.pid, 'bare-shipped': bare.pid, portcullis: portcullis.pid };
  const cpu = Object.fromEntries(Object.keys(servers).map((name) => [name, { ticks: 0, requests: 0 }]));
  const setupS = (performance.now() - started) / 1000;

  for (let round = 0; round <= ROUNDS; round++) {
    const order = CONFIGS.map((_, i) => CONFIGS[(i + round) % CONFIGS.length]);
    for (const name of order) {
      const config = configurations[name];
      await config.on();
      await inForce(create, name, deniedBody);
      if (round === 0) {
        await load(create, allowedBody, WARMUP_S, true);
      } else {
        const pid = servers[name];
        const before = pid === undefined ? 0 : cpuTicks(pid);
        const result = await load(create, allowedBody, ROUND_S, true);
        if (pid !== undefined) {
          cpu[name].ticks += cpuTicks(pid) - before;
          cpu[name].requests += result.count;
        }
        results.push({ name, pod: 'compliant', ...result });
        if (round === ROUNDS) {
          const denied = await load(create, deniedBody, DENIED_S, !DENIES[name]);
          results.push({ name, pod: 'denied', ...denied });
        }
      }
      await config.off();
      await outOfForce(create, name, deniedBody);
    }
  }
  report(results, cpu, setupS, (performance.now() - started) / 1000);
}

// --- the cluster ---------------------------------------------------------------------------------

async function startCluster() {
  const built = spawnSync('bash', [join(ROOT, 'test/e2e/build-binaries.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (built.status !== 0) throw new Error('test/e2e/build-binaries.sh failed');
  const env = { ...process.env };
  for (const line of built.stdout.split('\n')) {
    const match = /^(KUBE_APISERVER_BIN|ETCD_BIN)=(.*)$/.exec(line);
    if (match !== null) env[match[1]] = match[2];
  }
  clusterStarted = true;
  execFileSync('bash', [join(ROOT, 'test/e2e/start-cluster.sh'), dir], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return {
    url: readFileSync(join(dir, 'apiserver.url'), 'utf8').trim(),
    token: readFileSync(join(dir, 'admin.token'), 'utf8').trim(),
    ca: readFileSync(join(dir, 'certs/apiserver.crt'), 'utf8'),
  };
}

/** `api(method, path, body)`: one request as the admin over a keep-alive pool of CLIENTS connections. */
function apiClient(cluster) {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS, ca: cluster.ca });
  return (method, path, body, preserialised = false) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : preserialised ? body : JSON.stringify(body);
      const req = request(
        `${cluster.url}${path}`,
        {
          method,
          agent,
          headers: {
            authorization: `Bearer ${cluster.token}`,
            'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
          },
          timeout: 30_000,
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${path}`)));
      req.on('error', reject);
      req.end(payload);
    });
}

function must(answer, statuses) {
  if (!statuses.includes(answer.status))
    throw new Error(`API server answered ${answer.status}: ${answer.text}`);
  return answer;
}

// --- the configurations --------------------------------------------------------------------------

function psaConfiguration(api) {
  const label = (value) =>
    api('PATCH', `/api/v1/namespaces/${NAMESPACE}`, {
      metadata: { labels: { 'pod-security.kubernetes.io/enforce': value } },
    }).then((a) => must(a, [200]));
  return { on: () => label('restricted'), off: () => label(null) };
}

/** The shipped rules' pod concerns, in CEL, as a team would write them as a ValidatingAdmissionPolicy. */
function vapConfiguration(api) {
  const containers =
    '(has(object.spec.initContainers) ? object.spec.initContainers : []) + object.spec.containers + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : [])';
  const profile = (x) =>
    `has(${x}.securityContext) && has(${x}.securityContext.seccompProfile) && ${x}.securityContext.seccompProfile.type in ['RuntimeDefault', 'Localhost']`;
  const policy = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: 'bench-five-concerns' },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods'] },
        ],
      },
      variables: [{ name: 'containers', expression: containers }],
      validations: [
        {
          expression:
            'variables.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged)',
          message: 'privileged containers are not allowed',
        },
        {
          expression: '!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))',
          message: 'hostPath volumes are not allowed',
        },
        {
          expression:
            "variables.containers.all(c, c.image.startsWith('registry.k8s.io/') || c.image.startsWith('ghcr.io/portcullis/'))",
          message: 'images must come from a trusted registry',
        },
        {
          expression: `(${profile('object.spec')}) || variables.containers.all(c, ${profile('c')})`,
          message: 'a seccomp profile is required',
        },
      ],
    },
  };
  const binding = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: 'bench-five-concerns' },
    spec: {
      policyName: 'bench-five-concerns',
      validationActions: ['Deny'],
      matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NAMESPACE } } },
    },
  };
  const base = '/apis/admissionregistration.k8s.io/v1';
  return {
    on: async () => {
      must(await api('POST', `${base}/validatingadmissionpolicies`, policy), [201]);
      must(await api('POST', `${base}/validatingadmissionpolicybindings`, binding), [201]);
    },
    off: async () => {
      must(await api('DELETE', `${base}/validatingadmissionpolicybindings/bench-five-concerns`), [200]);
      must(await api('DELETE', `${base}/validatingadmissionpolicies/bench-five-concerns`), [200]);
    },
  };
}

function bareWebhook(url, caBundle) {
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'bench-bare' },
      webhooks: [
        {
          name: 'bare.bench.portcullis.io',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          timeoutSeconds: 5,
          failurePolicy: 'Fail',
          clientConfig: { url: `${url}/validate`, caBundle },
          rules: [
            {
              apiGroups: [''],
              apiVersions: ['v1'],
              operations: ['CREATE'],
              resources: ['pods'],
              scope: 'Namespaced',
            },
          ],
        },
      ],
    },
  ];
}

/** The webhook configurations of manifests/base, each clientConfig pointed at the local server. */
function shippedWebhooks(url, caBundle) {
  const rendered = execFileSync('kubectl', ['kustomize', join(ROOT, 'manifests/base')], { encoding: 'utf8' });
  return parseAllDocuments(rendered)
    .map((doc) => doc.toJS())
    .filter((o) => o?.kind === 'ValidatingWebhookConfiguration' || o?.kind === 'MutatingWebhookConfiguration')
    .map((o) => ({
      ...o,
      webhooks: o.webhooks.map((w) => ({
        ...w,
        clientConfig: { url: `${url}${w.clientConfig.service.path}`, caBundle },
      })),
    }));
}

function webhookConfiguration(api, objects) {
  const path = (o) =>
    `/apis/admissionregistration.k8s.io/v1/${o.kind === 'ValidatingWebhookConfiguration' ? 'validating' : 'mutating'}webhookconfigurations`;
  return {
    on: async () => {
      for (const o of objects) must(await api('POST', path(o), o), [201]);
    },
    off: async () => {
      for (const o of objects) must(await api('DELETE', `${path(o)}/${o.metadata.name}`), [200]);
    },
  };
}

/**
 * The API server takes up new admission configuration asynchronously. A configuration that denies
 * the denied pod is in force once it does; for one that denies nothing (bare, bare-shipped), a short
 * wait.
 */
async function inForce(create, name, deniedBody) {
  if (!DENIES[name]) return sleep(name === 'none' ? 0 : 1500);
  for (const until = performance.now() + 20_000; performance.now() < until; await sleep(100)) {
    if ((await create(deniedBody)).status >= 400) return;
  }
  throw new Error(`${name}: the denied pod is still admitted 20 s after the configuration was made`);
}

async function outOfForce(create, name, deniedBody) {
  if (!DENIES[name]) return sleep(name === 'none' ? 0 : 1500);
  for (const until = performance.now() + 20_000; performance.now() < until; await sleep(100)) {
    if ((await create(deniedBody)).status === 201) return;
  }
  throw new Error(`${name}: the denied pod is still refused 20 s after the configuration was removed`);
}

// --- load ----------------------------------------------------------------------------------------

/** CLIENTS loops sending `body` for `seconds`; every answer must be the expected verdict. */
async function load(create, body, seconds, expectAllowed) {
  const latencies = [];
  let wrong = 0;
  let lastWrong = '';
  const start = performance.now();
  const until = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        const answer = await create(body);
        latencies.push(performance.now() - t0);
        const allowed = answer.status === 201;
        if (allowed !== expectAllowed || (!allowed && ![400, 403, 422].includes(answer.status))) {
          wrong++;
          lastWrong = `${answer.status} ${answer.text.slice(0, 300)}`;
        }
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  if (wrong > 0)
    failures.push(`${wrong} answers not ${expectAllowed ? 'allowed' : 'denied'}; last: ${lastWrong}`);
  latencies.sort((a, b) => a - b);
  return { count: latencies.length, rps: latencies.length / elapsed, latencies };
}

function compliantPod() {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'bench', namespace: NAMESPACE, labels: { app: 'bench' } },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/pause:3.10',
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

function deniedPod() {
  const pod = compliantPod();
  pod.spec.containers[0].securityContext = { privileged: true };
  return pod;
}

// --- processes and figures -----------------------------------------------------------------------

function startNode(args, { drainStdout = false } = {}) {
  const child = spawn(NODE.path, [...NODE.flags, ...args], {
    cwd: ROOT,
    stdio: ['ignore', drainStdout ? 'pipe' : 'ignore', 'pipe'],
  });
  child.stdout?.resume();
  let output = '';
  child.stderr.on('data', (c) => (output = (output + c.toString()).slice(-4000)));
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGKILL' && signal !== 'SIGTERM')
      failures.push(`${args[0]} exited ${code}: ${output}`);
  });
  children.push(child);
  return child;
}

function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
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

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function report(results, cpu, setupS, totalS) {
  const summary = (name, pod) => {
    const runs = results.filter((r) => r.name === name && r.pod === pod);
    const all = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
    return {
      rps: runs.reduce((a, r) => a + r.rps, 0) / runs.length,
      p50: percentile(all, 0.5),
      p99: percentile(all, 0.99),
    };
  };
  const compliant = Object.fromEntries(CONFIGS.map((n) => [n, summary(n, 'compliant')]));
  const denied = Object.fromEntries(CONFIGS.map((n) => [n, summary(n, 'denied')]));
  const none = compliant.none;
  const bare = compliant.bare;
  const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  console.log(
    `bench:apiserver: kube-apiserver + etcd on loopback, webhook servers on node ${NODE.version} ${NODE.flags.join(' ')}, ${availableParallelism()} cores, ` +
      `load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} at the end`,
  );
  console.log(
    `${CLIENTS} clients, pod CREATE ?dryRun=All; ${ROUNDS} alternating rounds × ${ROUND_S} s per configuration ` +
      `after ${WARMUP_S} s warm-up, then ${DENIED_S} s of a denied pod; set-up ${fmt(setupS, 1)} s, total ${fmt(totalS, 1)} s`,
  );
  const rows = [
    [
      'admission in force',
      'creates/s',
      'vs none',
      'vs bare',
      'p50 ms',
      'p99 ms',
      'p99 added ms',
      'denied pod/s',
    ],
  ];
  for (const name of CONFIGS) {
    const c = compliant[name];
    rows.push([
      name,
      fmt(c.rps, 0),
      fmt(c.rps / none.rps),
      fmt(c.rps / bare.rps),
      fmt(c.p50, 1),
      fmt(c.p99, 1),
      fmt(c.p99 - none.p99, 1),
      fmt(denied[name].rps, 0),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const row of rows)
    console.log(
      row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '),
    );
  const cpuUs = Object.fromEntries(
    Object.entries(cpu).map(([name, c]) => [
      name,
      c.requests > 0 ? (c.ticks * TICK_MS * 1000) / c.requests : NaN,
    ]),
  );
  const added = (name) => compliant[name].p99 - none.p99;
  const shipped = compliant['bare-shipped'];
  console.log(
    `portcullis vs bare: ${fmt(compliant.portcullis.rps / bare.rps)} of its creates/s (target >= 0.90), ` +
      `p99 added ${fmt(added('portcullis') / added('bare'))}× (target <= 1.20)`,
  );
  console.log(
    `of which the webhook configurations alone (bare-shipped vs bare): ${fmt(shipped.rps / bare.rps)} of the creates/s, ` +
      `p99 added ${fmt(added('bare-shipped') / added('bare'))}×; the server (portcullis vs bare-shipped): ` +
      `${fmt(compliant.portcullis.rps / shipped.rps)}, p99 added ${fmt(added('portcullis') / added('bare-shipped'))}×`,
  );
  console.log(
    `webhook server CPU per pod create: Portcullis ${fmt(cpuUs.portcullis, 0)} µs, bare ${fmt(cpuUs.bare, 0)} µs, ` +
      `bare-shipped ${fmt(cpuUs['bare-shipped'], 0)} µs (Portcullis / bare ${fmt(cpuUs.portcullis / cpuUs.bare)})`,
  );
  for (const failure of failures) console.log(`FAILED: ${failure}`);
  const json = Object.fromEntries(
    CONFIGS.map((n) => [
      n,
      { rps: compliant[n].rps, p50: compliant[n].p50, p99: compliant[n].p99, deniedRps: denied[n].rps },
    ]),
  );
  console.log(
    JSON.stringify({
      ok: failures.length === 0,
      configurations: json,
      serverCpuUsPerCreate: cpuUs,
    }),
  );
}
