// The processes behind the end-to-end suite: a loopback etcd + kube-apiserver (start-cluster.sh),
// `portcullis serve`, real kubectl, and a watchdog that stops all of them if the test process dies
// without running its teardown (a tap timeout ends in SIGKILL). Nothing here judges anything: the
// suite asserts, this file only starts, drives and stops.

import { spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import tap, { type Test } from 'tap';
import { parse, stringify } from 'yaml';
import { isRecord, type KubeObject } from '../helpers/webhooks.js';
import { pointWebhooksAt, renderManifests, toYaml, type WebhookConfiguration } from './webhooks.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPTS = join(REPO, 'test/e2e');

export interface Binaries {
  apiserver: string;
  etcd: string;
}

/**
 * The binaries build-binaries.sh caches, found the way it names them, without running it: a cold
 * build takes a quarter of an hour, which a test run must never start on its own.
 */
export function findBinaries(): { binaries: Binaries } | { missing: string } {
  const version = process.env.K8S_VERSION ?? 'v1.34.10';
  const cache = join(process.env.PORTCULLIS_E2E_CACHE ?? join(homedir(), '.cache/portcullis-e2e'), version);
  const binaries = {
    apiserver: process.env.KUBE_APISERVER_BIN ?? join(cache, 'kube-apiserver'),
    etcd: process.env.ETCD_BIN ?? join(cache, 'etcd'),
  };
  for (const path of [binaries.apiserver, binaries.etcd]) {
    if (!isExecutable(path)) return { missing: `${path} is not built` };
  }
  if (!onPath('kubectl')) return { missing: 'kubectl is not on PATH' };
  if (!existsSync(join(REPO, 'dist/cli/main.js'))) return { missing: 'dist/ is not built (npm run build)' };
  return { binaries };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && isExecutable(join(dir, command)));
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from spawn to exit. */
  ms: number;
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string>;
  /** Killed (SIGKILL) after this long; a hung kubectl must fail the step, not the whole run. */
  timeoutMs?: number;
}

/**
 * The environment for everything this suite starts: ours without tap's. tap's process-info hook
 * puts its loader into NODE_OPTIONS of every child (it wraps child_process, so deleting the variable
 * here is undone), and that loader cannot load bin/portcullis. So children run under
 * `env -u NODE_OPTIONS`.
 */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('TAP') || key.startsWith('_TAPJS_')) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function untapped(command: string, args: readonly string[]): [string, string[]] {
  return ['env', ['-u', 'NODE_OPTIONS', command, ...args]];
}

/** Runs a command to completion; never throws for a non-zero exit (callers assert on it). */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(...untapped(command, args), {
      cwd: REPO,
      env: childEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr, ms: performance.now() - started });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A TCP port nothing listens on right now (the kernel's pick). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolvePromise(port);
      });
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Calls `probe` until it returns a value other than undefined, or gives up after `timeoutMs`. */
export async function poll<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) return undefined;
    await sleep(intervalMs);
  }
}

export interface HttpResult {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One HTTPS request, trusting exactly `ca`. */
export function httpsRequest(
  url: string,
  options: {
    ca: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
  },
): Promise<HttpResult> {
  return new Promise((resolvePromise, reject) => {
    const req = https.request(
      url,
      {
        method: options.method ?? 'GET',
        ca: options.ca,
        headers: options.headers,
        timeout: options.timeoutMs ?? 5_000,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          resolvePromise({ status: res.statusCode ?? 0, body, headers: res.headers });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The etcd + kube-apiserver start-cluster.sh runs in `workdir`, driven through real kubectl. */
export class Cluster {
  readonly kubeconfig: string;
  readonly url: string;
  private readonly token: string;
  private readonly ca: string;

  private constructor(readonly workdir: string) {
    this.kubeconfig = join(workdir, 'kubeconfig');
    this.url = readFileSync(join(workdir, 'apiserver.url'), 'utf8').trim();
    this.token = readFileSync(join(workdir, 'admin.token'), 'utf8').trim();
    this.ca = readFileSync(join(workdir, 'certs/apiserver.crt'), 'utf8');
  }

  /** `env` adds start-cluster.sh's options (e.g. AUDIT_POLICY). */
  static async start(
    workdir: string,
    binaries: Binaries,
    extraFlags: readonly string[],
    env: Record<string, string> = {},
  ): Promise<Cluster> {
    const result = await run('bash', [join(SCRIPTS, 'start-cluster.sh'), workdir], {
      env: {
        ...env,
        KUBE_APISERVER_BIN: binaries.apiserver,
        ETCD_BIN: binaries.etcd,
        EXTRA_APISERVER_FLAGS: extraFlags.join(' '),
      },
      timeoutMs: 120_000,
    });
    if (result.code !== 0) throw new Error(`start-cluster.sh failed (${result.code}):\n${result.stderr}`);
    return new Cluster(workdir);
  }

  static async stop(workdir: string): Promise<void> {
    await run('bash', [join(SCRIPTS, 'stop-cluster.sh'), workdir], { timeoutMs: 60_000 });
  }

  /**
   * Stops the kube-apiserver and starts it again with the same flags on the same etcd
   * (start-cluster.sh always starts from an empty one), as a control-plane restart does: the API
   * server then reconciles its bootstrap RBAC through whatever admission webhooks are registered.
   * Resolves once /readyz answers 200 (its post-start hooks included); throws if the process exits
   * first (a failed post-start hook is fatal) or is not ready within `timeoutMs`.
   */
  async restartApiServer(timeoutMs = 90_000): Promise<void> {
    const pidFile = join(this.workdir, 'kube-apiserver.pid');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((arg) => arg !== '');
    const [binary, ...flags] = argv;
    if (binary === undefined || !argv.some((arg) => arg.includes(`${this.workdir}/`))) {
      throw new Error(`pid ${pid} is not this cluster's kube-apiserver`);
    }
    process.kill(pid, 'SIGTERM');
    if ((await poll(async () => (isAlive(pid) ? undefined : true), 30_000)) !== true) {
      process.kill(pid, 'SIGKILL');
    }
    const log = openSync(join(this.workdir, 'kube-apiserver.log'), 'a');
    const child = spawn(binary, flags, { detached: true, stdio: ['ignore', log, log], env: childEnv() });
    closeSync(log);
    child.unref();
    const restarted = child.pid;
    if (restarted === undefined) throw new Error('kube-apiserver did not start again');
    writeFileSync(pidFile, String(restarted));
    const ready = await poll(
      async () => {
        if (!isAlive(restarted)) return false;
        try {
          return (await this.api('GET', '/readyz')).status === 200 ? true : undefined;
        } catch {
          return undefined;
        }
      },
      timeoutMs,
      250,
    );
    if (ready !== true) {
      const logText = readFileSync(join(this.workdir, 'kube-apiserver.log'), 'utf8');
      const tail = logText.trimEnd().split('\n').slice(-30).join('\n');
      throw new Error(
        `kube-apiserver ${ready === false ? 'exited' : 'not ready'} after the restart:\n${tail}`,
      );
    }
  }

  kubectl(args: readonly string[], input?: string): Promise<RunResult> {
    return run('kubectl', ['--kubeconfig', this.kubeconfig, ...args], {
      ...(input === undefined ? {} : { input }),
      timeoutMs: 30_000,
    });
  }

  /**
   * A raw API call as the admin, for the tight loops where a kubectl process per try (~100 ms to
   * start) would be coarser than what is measured.
   */
  api(method: string, path: string, body?: unknown): Promise<HttpResult> {
    return httpsRequest(`${this.url}${path}`, {
      ca: this.ca,
      method,
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `portcullis serve` as a child process, its output in `logFile`. */
export class PortcullisServer {
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly logFile: string,
  ) {
    this.exited = new Promise((r) => {
      child.once('exit', () => {
        r();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** `pidFile` is where the watchdog looks for it. */
  static start(args: readonly string[], port: number, logFile: string, pidFile: string): PortcullisServer {
    const log = createWriteStream(logFile, { flags: 'a' });
    const child = spawn(...untapped(process.execPath, [join(REPO, 'bin/portcullis'), 'serve', ...args]), {
      cwd: REPO,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    writeFileSync(pidFile, String(child.pid ?? ''));
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    return new PortcullisServer(child, `https://127.0.0.1:${port}`, logFile);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves true once /readyz answers 200, false if the process exits or `timeoutMs` passes. */
  async ready(ca: string, timeoutMs: number): Promise<boolean> {
    const ok = await poll(async () => {
      if (!this.running) return false;
      try {
        const res = await httpsRequest(`${this.url}/readyz`, { ca, timeoutMs: 1_000 });
        return res.status === 200 ? true : undefined;
      } catch {
        return undefined;
      }
    }, timeoutMs);
    return ok === true;
  }

  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(killer);
  }
}

/**
 * A detached shell that outlives this process only to clean up after it: once our pid is gone it
 * stops the server whose pid is in `serverPidFile` (if that pid still names `workdir` in its command
 * line: pids get reused) and the cluster in `workdir`. The teardown ends it first in a normal run.
 */
export function startWatchdog(workdir: string, serverPidFile: string): ChildProcess {
  const script = `
    while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done
    pid=$(cat "${serverPidFile}" 2>/dev/null || true)
    if [ -n "$pid" ] && tr '\\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "${workdir}/"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
    bash "${join(SCRIPTS, 'stop-cluster.sh')}" "${workdir}" >/dev/null 2>&1 || true
  `;
  const child = spawn('bash', ['-c', script], { detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}

// --- a suite's start-up -----------------------------------------------------------------------
// What every file here does before its first assertion, and undoes after its last: a workdir, the
// watchdog, the control plane, `portcullis certs`, `portcullis serve` as the shipped
// ServiceAccount, the webhook configurations as manifests/ renders them pointed at that server.
// Each file takes the steps it needs, in its own order; the teardown stops whatever got started.

/** Throws, with its output, unless the command exited 0: for the steps a suite cannot go on without. */
export async function must(result: Promise<RunResult>, what: string): Promise<RunResult> {
  const r = await result;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  return r;
}

/** The last `lines` lines of a log file, or '' if there is none yet. */
export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface ClusterOptions {
  /** Names the workdir (portcullis-e2e-NAME-…) and the line that says where its logs were kept. */
  name: string;
  /**
   * The API server's audit policy, as a file or as the Policy object to write one from; the
   * events go to `auditLog` (start-cluster.sh's AUDIT_POLICY).
   */
  auditPolicy?: string | Record<string, unknown>;
  extraApiServerFlags?: readonly string[];
}

/** A started control plane and what the teardown stops with it. */
export interface E2eCluster {
  readonly workdir: string;
  readonly cluster: Cluster;
  /** The API server's audit log (written only with `auditPolicy`). */
  readonly auditLog: string;
  /** The `portcullis serve` children started with startServe, stopped by the teardown. */
  readonly servers: PortcullisServer[];
  /** Where startServe's server writes its audit events. */
  readonly serveAuditLog: string;
  /** kubectl as the admin; `input` is sent as it is if a string, else as JSON. */
  readonly kubectl: (args: readonly string[], input?: unknown) => Promise<RunResult>;
}

/**
 * A workdir, the watchdog and the control plane, with the teardown registered first (a start that
 * throws is cleaned up too): it stops the servers, the cluster and the watchdog, and removes the
 * workdir only if `t` passed, else says where its logs are.
 */
export async function startCluster(
  t: Test,
  binaries: Binaries,
  options: ClusterOptions,
): Promise<E2eCluster> {
  const workdir = mkdtempSync(join(tmpdir(), `portcullis-e2e-${options.name}-`));
  const watchdog = startWatchdog(workdir, join(workdir, SERVER_PID_FILE));
  const servers: PortcullisServer[] = [];
  t.teardown(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await Cluster.stop(workdir);
    if (watchdog.pid !== undefined) process.kill(-watchdog.pid, 'SIGTERM');
    if (t.passing()) rmSync(workdir, { recursive: true, force: true });
    else console.error(`# end-to-end (${options.name}): logs kept in ${workdir}`);
  });
  const env: Record<string, string> = {};
  if (typeof options.auditPolicy === 'string') env['AUDIT_POLICY'] = options.auditPolicy;
  else if (options.auditPolicy !== undefined) {
    env['AUDIT_POLICY'] = join(workdir, 'audit-policy.yaml');
    writeFileSync(env['AUDIT_POLICY'], stringify(options.auditPolicy));
  }
  const cluster = await Cluster.start(workdir, binaries, options.extraApiServerFlags ?? [], env);
  return {
    workdir,
    cluster,
    auditLog: join(workdir, 'audit.log'),
    serveAuditLog: join(workdir, 'portcullis-audit.log'),
    servers,
    kubectl: (args, input) =>
      cluster.kubectl(
        args,
        input === undefined ? undefined : typeof input === 'string' ? input : JSON.stringify(input),
      ),
  };
}

const SERVER_PID_FILE = 'portcullis.pid';
const RULES_CONFIGMAP = 'portcullis-rules';
const isRulesConfigMap = (o: KubeObject): boolean =>
  o.kind === 'ConfigMap' && isRecord(o['metadata']) && o['metadata']['name'] === RULES_CONFIGMAP;
const WEBHOOK_KINDS = ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'];

/** A rule of a RuleSet as parsed from YAML (what the suites edit of one). */
export interface RuleDocument {
  name: string;
  check: string;
  action?: string;
  params?: Record<string, unknown>;
  [field: string]: unknown;
}

/** A RuleSet as parsed from YAML. */
export interface RuleSetDocument {
  rules: RuleDocument[];
  [field: string]: unknown;
}

export interface ShippedManifests {
  /** Every object `kubectl kustomize manifests/` renders. */
  objects: KubeObject[];
  /** The shipped RuleSet, from the rules ConfigMap. */
  ruleSet: RuleSetDocument;
  /** The shipped rules ConfigMap with `ruleset` (an object, or YAML text) as its rules.yaml. */
  readonly rulesConfigMap: (ruleset: unknown) => KubeObject;
}

export function shippedManifests(): ShippedManifests {
  const objects = renderManifests();
  const shipped = objects.find(isRulesConfigMap);
  const text = isRecord(shipped?.['data']) ? shipped['data']['rules.yaml'] : undefined;
  if (shipped === undefined || typeof text !== 'string') {
    throw new Error(`manifests/ renders no ${RULES_CONFIGMAP} ConfigMap with a rules.yaml`);
  }
  return {
    objects,
    ruleSet: parse(text) as RuleSetDocument,
    rulesConfigMap: (ruleset) => ({
      ...structuredClone(shipped),
      data: { 'rules.yaml': typeof ruleset === 'string' ? ruleset : stringify(ruleset) },
    }),
  };
}

/**
 * Applies what ships but the Deployment (no kubelet runs here: serve runs beside the API server)
 * and the webhook configurations (registerWebhooks points them at that server), the rules
 * ConfigMap carrying `ruleset` instead of the shipped RuleSet when given.
 */
export async function applyShippedManifests(
  e2e: E2eCluster,
  shipped: ShippedManifests,
  ruleset?: unknown,
): Promise<void> {
  const infrastructure = shipped.objects
    .filter((o) => o.kind !== 'Deployment' && !WEBHOOK_KINDS.includes(o.kind))
    .map((o) => (ruleset !== undefined && isRulesConfigMap(o) ? shipped.rulesConfigMap(ruleset) : o));
  await must(e2e.kubectl(['apply', '-f', '-'], toYaml(infrastructure)), 'apply the rendered manifests');
}

export interface Certificates {
  cert: string;
  key: string;
  /** The CA's PEM file and text, and the base64 of it that `portcullis certs` prints (a caBundle). */
  caFile: string;
  caPem: string;
  caBundle: string;
}

/**
 * `portcullis certs` for the Service portcullis in `namespace`, with 127.0.0.1 as an address (the
 * API server dials it here, not the Service); `extraArgs` adds names (e.g. `--dns localhost`).
 */
export async function makeCertificates(
  e2e: E2eCluster,
  options: { namespace?: string; extraArgs?: readonly string[] } = {},
): Promise<Certificates> {
  const dir = join(e2e.workdir, 'tls');
  mkdirSync(dir);
  const certs = await must(
    run(process.execPath, [
      join(REPO, 'bin/portcullis'),
      'certs', '--service', 'portcullis', '--namespace', options.namespace ?? 'portcullis',
      '--out', dir, '--ip', '127.0.0.1', ...(options.extraArgs ?? []),
    ]), // prettier-ignore
    'portcullis certs',
  );
  const caFile = join(dir, 'ca.crt');
  return {
    cert: join(dir, 'tls.crt'),
    key: join(dir, 'tls.key'),
    caFile,
    caPem: readFileSync(caFile, 'utf8'),
    caBundle: certs.stdout.trim(),
  };
}

/** A kubeconfig for the ServiceAccount `namespace`/`name`: its RBAC is all it gets. */
export async function serviceAccountKubeconfig(
  e2e: E2eCluster,
  namespace = 'portcullis',
  name = 'portcullis',
): Promise<string> {
  const token = await must(
    e2e.kubectl(['create', 'token', name, '-n', namespace, '--duration=1h']),
    `a token for the ServiceAccount ${namespace}/${name}`,
  );
  const kubeconfig = join(e2e.workdir, `${name}.kubeconfig`);
  writeFileSync(
    kubeconfig,
    readFileSync(e2e.cluster.kubeconfig, 'utf8').replace(/token: .*/, `token: ${token.stdout.trim()}`),
  );
  return kubeconfig;
}

export interface ServeOptions {
  port: number;
  certs: Certificates;
  kubeconfig: string;
  /** NAMESPACE/NAME of the rules ConfigMap; the shipped one by default. */
  rulesConfigMap?: string;
  /** More flags for serve (e.g. --webhook-configuration). */
  extraArgs?: readonly string[];
}

/**
 * `portcullis serve` on 127.0.0.1:`port` following the rules ConfigMap, its log in
 * WORKDIR/portcullis.log and its audit events in `serveAuditLog`; not yet ready.
 */
export function startServe(e2e: E2eCluster, options: ServeOptions): PortcullisServer {
  const server = PortcullisServer.start(
    [
      '--rules-configmap', options.rulesConfigMap ?? `portcullis/${RULES_CONFIGMAP}`,
      '--kubeconfig', options.kubeconfig,
      '--tls-cert', options.certs.cert, '--tls-key', options.certs.key,
      '--host', '127.0.0.1', '--port', String(options.port),
      '--audit-log', e2e.serveAuditLog,
      ...(options.extraArgs ?? []),
    ], // prettier-ignore
    options.port,
    join(e2e.workdir, 'portcullis.log'),
    join(e2e.workdir, SERVER_PID_FILE),
  );
  e2e.servers.push(server);
  return server;
}

/** The rendered webhook configurations pointed at 127.0.0.1:`port`, applied; returned as applied. */
export async function registerWebhooks(
  e2e: E2eCluster,
  port: number,
  caBundle: string,
): Promise<WebhookConfiguration[]> {
  const configs = pointWebhooksAt(`https://127.0.0.1:${port}`, caBundle);
  await must(e2e.kubectl(['apply', '-f', '-'], toYaml(configs)), 'apply the rendered webhook configurations');
  return configs;
}

export interface Portcullis {
  server: PortcullisServer;
  port: number;
  certs: Certificates;
  /** The webhook configurations as registered (empty unless `webhooks` was given). */
  webhookConfigs: WebhookConfiguration[];
}

/**
 * Certificates, a free port, serve as the ServiceAccount (ready within 20 s, else this throws with
 * its log), and the webhook configurations registered `before` serve starts (a serve that keeps
 * one in step with its rules needs it there) or `after` it is ready, or not at all.
 */
export async function startPortcullis(
  e2e: E2eCluster,
  options: { extraArgs?: readonly string[]; webhooks?: 'before' | 'after' } = {},
): Promise<Portcullis> {
  const certs = await makeCertificates(e2e);
  const kubeconfig = await serviceAccountKubeconfig(e2e);
  const port = await freePort();
  let webhookConfigs: WebhookConfiguration[] = [];
  if (options.webhooks === 'before') webhookConfigs = await registerWebhooks(e2e, port, certs.caBundle);
  const server = startServe(e2e, { port, certs, kubeconfig, extraArgs: options.extraArgs });
  if (!(await server.ready(certs.caPem, 20_000))) {
    throw new Error(`serve never became ready as the portcullis ServiceAccount:\n${tail(server.logFile)}`);
  }
  if (options.webhooks === 'after') webhookConfigs = await registerWebhooks(e2e, port, certs.caBundle);
  return { server, port, certs, webhookConfigs };
}

/**
 * Runs `suite` as one subtest (a start-up that throws fails it, and its teardown runs either way)
 * when the binaries are built, and `missing` (another prerequisite's absence) is undefined; else
 * skips saying why, or fails under `npm run test:e2e` (PORTCULLIS_E2E_REQUIRED=1).
 */
export function runSuite(
  title: string,
  suite: (t: Test, binaries: Binaries) => Promise<void>,
  missing?: string,
): void {
  const found = findBinaries();
  const reason = 'missing' in found ? found.missing : missing;
  if ('missing' in found || reason !== undefined) {
    const why = `${title}: skipped: ${reason ?? ''}. \`npm run test:e2e\` builds what is missing and runs it`;
    if (process.env['PORTCULLIS_E2E_REQUIRED'] === '1') tap.fail(why);
    else tap.plan(0, why);
    return;
  }
  tap.setTimeout(240_000);
  tap.test(title, (t) => suite(t, found.binaries));
}
