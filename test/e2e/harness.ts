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
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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
