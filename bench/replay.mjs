// `npm run bench:replay`: `portcullis replay` over a generated audit log of 100,000 events, shaped
// as the API server writes one under docs/audit-policy.yaml: pod creates with the ~5 KB body a
// ReplicaSet controller sends (bench/fixtures/pod-create-review.json; one in ten privileged, so
// denied), Deployment creates and updates, patches, refused creates, and Metadata-level reads,
// watches and lease updates. Reports events/s and peak RSS for the table, JSON, --baseline and a
// gzipped log, against a baseline measured in the same run on the same file: reading it line by
// line with node:readline and JSON.parse of each line, the least any tool must do to look at it.
//
// Each measurement runs in a fresh process (this script with --child), so the peak RSS is its own.
// The target (well over 10,000 events/s) is reported, not enforced: exit 1 only on a wrong count.
// Plain ESM over dist/ so it needs no TypeScript loader; `npm run bench:replay` builds first.

import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EVENTS = 100_000;

if (process.argv[2] === '--child') await child(process.argv[3], process.argv.slice(4));
else await main();

async function child(mode, args) {
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  let events = 0;
  if (mode === 'readline') {
    const lines = createInterface({ input: createReadStream(args[0]), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line === '') continue;
      JSON.parse(line);
      events++;
    }
  } else {
    const { runReplay } = await import('../dist/cli/replay.js');
    const [output, rules, baseline, ...logs] = args;
    let summary = '';
    const sink = {
      write(chunk) {
        if (output === 'json') summary = chunk;
        else summary += chunk;
        return true;
      },
      once() {},
    };
    const code = await runReplay(
      logs,
      { rules, output, ...(baseline === '-' ? {} : { baseline }) },
      { stdin: process.stdin, stdout: sink, stderr: process.stderr, progress: false },
    );
    const match = /(\d+) events? read/.exec(summary) ?? /"events": (\d+),/.exec(summary);
    events = match === null ? -1 : Number(match[1]);
    process.stderr.write(code === 2 ? `replay exited 2\n` : '');
  }
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  process.stdout.write(
    JSON.stringify({ events, ms, cpuMs, maxRssKiB: process.resourceUsage().maxRSS }) + '\n',
  );
}

function measure(mode, ...args) {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', mode, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').at(-1));
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-replay-'));
  try {
    const log = join(dir, 'audit.log');
    const expected = await generate(log);
    const gz = `${log}.gz`;
    await pipeline(createReadStream(log), createGzip(), createWriteStream(gz));
    const rules = join(ROOT, 'rules/default.yaml');
    // The change under review: registries tightened to registry.k8s.io alone.
    const tightened = join(dir, 'tightened.yaml');
    await writeFile(tightened, readFileSync(rules, 'utf8').replace(/\n\s+- ghcr\.io\/portcullis\n/, '\n'));
    const size = (await stat(log)).size;
    const gzSize = (await stat(gz)).size;

    const runs = [
      ['baseline: readline + JSON.parse', 'readline', log],
      ['replay (table)', 'replay', 'table', rules, '-', log],
      ['replay -o json', 'replay', 'json', rules, '-', log],
      ['replay --baseline', 'replay', 'table', tightened, rules, log],
      ['replay of the .gz', 'replay', 'table', rules, '-', gz],
    ];
    const results = [];
    let failed = false;
    for (const [label, mode, ...args] of runs) {
      const r = measure(mode, ...args);
      if (r.events !== expected) {
        console.error(`${label}: counted ${r.events} events, generated ${expected}`);
        failed = true;
      }
      results.push({
        label,
        ...r,
        perSecond: Math.round((r.events / r.ms) * 1000),
        perCpuSecond: Math.round((r.events / r.cpuMs) * 1000),
      });
    }
    const base = results[0];
    console.log(
      `audit log: ${expected.toLocaleString('en-US')} events, ${(size / 2 ** 20).toFixed(0)} MiB ` +
        `(${(gzSize / 2 ** 20).toFixed(0)} MiB gzipped); node ${process.version}\n`,
    );
    // Wall-clock rates depend on what else runs on the machine; CPU time per event much less.
    console.log('run                              events/s  per CPU-s  vs baseline (CPU)  time     peak RSS');
    for (const r of results) {
      console.log(
        `${r.label.padEnd(32)} ${r.perSecond.toLocaleString('en-US').padStart(8)}  ` +
          `${r.perCpuSecond.toLocaleString('en-US').padStart(9)}  ` +
          `${(r.perCpuSecond / base.perCpuSecond).toFixed(2).padStart(17)}  ${(r.ms / 1000).toFixed(1).padStart(5)} s  ` +
          `${(r.maxRssKiB / 1024).toFixed(0).padStart(5)} MiB`,
      );
    }
    console.log(
      JSON.stringify({
        events: expected,
        bytes: size,
        gzipBytes: gzSize,
        runs: results.map(({ label, perSecond, ms, maxRssKiB }) => ({
          label,
          perSecond,
          ms: Math.round(ms),
          maxRssKiB,
        })),
      }),
    );
    process.exitCode = failed ? 1 : 0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes EVENTS audit events to `path`; returns how many. */
async function generate(path) {
  const review = JSON.parse(readFileSync(join(ROOT, 'bench/fixtures/pod-create-review.json'), 'utf8'));
  const pod = review.request.object;
  const controller = review.request.userInfo;
  const users = ['alice', 'bob', 'carol', 'dave', 'erin'].map((name) => ({
    username: name,
    groups: ['dev', 'system:authenticated'],
  }));
  const namespaces = ['shop', 'payments', 'search', 'kube-system', 'ml'];
  const out = createWriteStream(path);
  const write = (line) => (out.write(line + '\n') ? undefined : new Promise((r) => out.once('drain', r)));
  const t0 = Date.parse('2026-12-01T00:00:00Z');
  for (let i = 0; i < EVENTS; i++) {
    const time = new Date(t0 + i * 37).toISOString().replace('Z', '000Z');
    const ns = namespaces[i % namespaces.length];
    const user = users[i % users.length];
    const base = {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      auditID: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      stage: 'ResponseComplete',
      requestReceivedTimestamp: time,
      stageTimestamp: time,
      sourceIPs: ['10.0.0.1'],
      userAgent: 'kubectl/v1.34.0',
    };
    const slot = i % 20;
    let event;
    if (slot < 6) {
      // Pod creates by the ReplicaSet controller; one in ten privileged.
      const object = structuredClone(pod);
      object.metadata.name = `web-${i}`;
      object.metadata.namespace = ns;
      if (i % 10 === 0) object.spec.containers[0].securityContext = { privileged: true };
      event = {
        ...base,
        level: 'Request',
        requestURI: `/api/v1/namespaces/${ns}/pods`,
        verb: 'create',
        user: controller,
        objectRef: { resource: 'pods', namespace: ns, name: `web-${i}`, apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: 201 },
        requestObject: object,
      };
    } else if (slot < 8) {
      // Deployment creates and updates by people.
      const name = `app-${i % 500}`;
      const template = structuredClone(pod);
      delete template.status;
      event = {
        ...base,
        level: 'Request',
        requestURI: `/apis/apps/v1/namespaces/${ns}/deployments${slot === 7 ? `/${name}` : ''}`,
        verb: slot === 6 ? 'create' : 'update',
        user,
        objectRef: { resource: 'deployments', namespace: ns, name, apiGroup: 'apps', apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: slot === 6 ? 201 : 200 },
        requestObject: {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name, namespace: ns, labels: { app: name, rev: String(i) } },
          spec: {
            replicas: 3,
            selector: { matchLabels: { app: name } },
            template: { metadata: { labels: { app: name } }, spec: template.spec },
          },
        },
      };
    } else if (slot === 8) {
      event = {
        ...base,
        level: 'Request',
        requestURI: `/api/v1/namespaces/${ns}/pods/web-${i - 8}`,
        verb: 'patch',
        user,
        objectRef: { resource: 'pods', namespace: ns, name: `web-${i - 8}`, apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: 200 },
        requestObject: { metadata: { labels: { reviewed: 'yes' } } },
      };
    } else if (slot === 9) {
      event = {
        ...base,
        level: 'Request',
        requestURI: `/api/v1/namespaces/${ns}/pods`,
        verb: 'create',
        user,
        objectRef: { resource: 'pods', namespace: ns, name: 'Bad_Name', apiVersion: 'v1' },
        responseStatus: { metadata: {}, status: 'Failure', reason: 'Invalid', code: 422 },
        requestObject: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'Bad_Name' }, spec: pod.spec },
      };
    } else if (slot < 14) {
      event = {
        ...base,
        level: 'Metadata',
        requestURI: `/api/v1/namespaces/${ns}/pods?limit=500`,
        verb: 'list',
        user,
        objectRef: { resource: 'pods', namespace: ns, apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: 200 },
      };
    } else if (slot < 17) {
      event = {
        ...base,
        level: 'Metadata',
        requestURI: `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-${i % 50}`,
        verb: 'update',
        user: { username: `system:node:node-${i % 50}`, groups: ['system:nodes', 'system:authenticated'] },
        objectRef: {
          resource: 'leases',
          namespace: 'kube-node-lease',
          name: `node-${i % 50}`,
          apiGroup: 'coordination.k8s.io',
          apiVersion: 'v1',
        },
        responseStatus: { metadata: {}, code: 200 },
      };
    } else {
      event = {
        ...base,
        level: 'Metadata',
        requestURI: `/api/v1/namespaces/${ns}/configmaps/settings`,
        verb: 'get',
        user,
        objectRef: { resource: 'configmaps', namespace: ns, name: 'settings', apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: 200 },
      };
    }
    await write(JSON.stringify(event));
  }
  await new Promise((resolve) => out.end(resolve));
  return EVENTS;
}
