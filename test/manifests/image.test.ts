// The container image without a container engine: this test reads the Dockerfile, builds each
// stage's /app in a scratch directory by doing what its COPY and RUN lines say (COPY from the build
// context through .dockerignore, COPY --from another stage), and then starts the runtime stage's
// ENTRYPOINT + CMD from the result: production dependencies only, on this machine's Node.
//
// One shortcut: the build stage's full `npm ci` (dev dependencies, about 550 packages) is replaced
// by a link to this checkout's node_modules, installed from the same package-lock.json. The
// production `npm ci --omit=dev` runs for real (offline-first from the npm cache).

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import t from 'tap';
import { at, isRecord, plainNode, record, REPO_ROOT } from '../helpers/manifests.js';

t.setTimeout(300_000);

// --- the Dockerfile ----------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** The instructions this emulation understands; any other fails the test rather than being skipped. */
const KNOWN = new Set(['FROM', 'WORKDIR', 'ENV', 'COPY', 'RUN', 'USER', 'EXPOSE', 'ENTRYPOINT', 'CMD']);

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i] ?? '';
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + (lines[++i] ?? '');
    const match = /^\s*(\w+)\s+(.*)$/.exec(line);
    if (match === null) throw new Error(`Dockerfile:${start}: cannot parse ${line}`);
    const keyword = (match[1] ?? '').toUpperCase();
    const args = (match[2] ?? '').trim();
    if (!KNOWN.has(keyword)) throw new Error(`Dockerfile:${start}: ${keyword} is not emulated by this test`);
    if (keyword === 'FROM') {
      const [from = '', as, name] = args.split(/\s+/);
      stages.push({
        name: as?.toUpperCase() === 'AS' && name !== undefined ? name : String(stages.length),
        from,
        instructions: [],
      });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) throw new Error(`Dockerfile:${start}: ${keyword} before FROM`);
    stage.instructions.push({ keyword, args, line: start });
  }
  return stages;
}

function jsonArray(instruction: Instruction | undefined): string[] {
  const value: unknown = JSON.parse(instruction?.args ?? 'null');
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new Error(
      `Dockerfile:${String(instruction?.line)}: ${String(instruction?.keyword)} must be a JSON array`,
    );
  }
  return value;
}

// --- .dockerignore -----------------------------------------------------------------------------

interface IgnoreRule {
  pattern: RegExp;
  exception: boolean;
}

function parseDockerignore(text: string): IgnoreRule[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const exception = l.startsWith('!');
      const glob = (exception ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      const source = glob
        .split(/(\*\*|\*|\?)/)
        .map((part) =>
          part === '**'
            ? '.*'
            : part === '*'
              ? '[^/]*'
              : part === '?'
                ? '[^/]'
                : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
        )
        .join('');
      return { pattern: new RegExp(`^${source}$`), exception };
    });
}

/** Docker's rule: the last pattern that matches the path or one of its parents decides. */
function ignored(rules: readonly IgnoreRule[], path: string): boolean {
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const rule of rules) {
    if (candidates.some((c) => rule.pattern.test(c))) excluded = !rule.exception;
  }
  return excluded;
}

// --- emulation ---------------------------------------------------------------------------------

const dockerfile = parseDockerfile(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const ignoreRules = parseDockerignore(readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8'));
const scratch = mkdtempSync(join(tmpdir(), 'portcullis-image-'));
t.teardown(() => {
  rmSync(scratch, { recursive: true, force: true });
});
const stageDirs = new Map<string, string>();
const WORKDIR = '/app';

function inStage(stageDir: string, path: string): string {
  if (path.startsWith('/')) {
    if (path !== WORKDIR && !path.startsWith(`${WORKDIR}/`))
      throw new Error(`paths outside ${WORKDIR} are not emulated: ${path}`);
    return join(stageDir, relative(WORKDIR, path));
  }
  return join(stageDir, path);
}

function copy(stageDir: string, instruction: Instruction): void {
  const tokens = instruction.args.split(/\s+/);
  const flags = tokens.filter((tok) => tok.startsWith('--'));
  const paths = tokens.filter((tok) => !tok.startsWith('--'));
  const dest = paths.pop();
  if (dest === undefined || paths.length === 0)
    throw new Error(`Dockerfile:${instruction.line}: COPY needs a source and a destination`);
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  const sourceRoot = from === undefined ? REPO_ROOT : stageDirs.get(from);
  if (sourceRoot === undefined)
    throw new Error(`Dockerfile:${instruction.line}: no stage ${String(from)} before this COPY`);
  const intoDirectory = dest.endsWith('/') || paths.length > 1;
  for (const source of paths) {
    const absolute = from === undefined ? join(REPO_ROOT, source) : inStage(sourceRoot, source);
    if (!existsSync(absolute))
      throw new Error(`Dockerfile:${instruction.line}: COPY source ${source} does not exist`);
    // Docker copies a directory's contents, and a file to the path named (or into a directory).
    const target = statSync(absolute).isDirectory()
      ? inStage(stageDir, dest)
      : intoDirectory
        ? join(inStage(stageDir, dest), basename(source))
        : inStage(stageDir, dest);
    mkdirSync(statSync(absolute).isDirectory() ? target : dirname(target), { recursive: true });
    cpSync(absolute, target, {
      recursive: true,
      verbatimSymlinks: true,
      // The build context holds only what .dockerignore lets through.
      filter: (path) =>
        from !== undefined || path === REPO_ROOT || !ignored(ignoreRules, relative(REPO_ROOT, path)),
    });
  }
}

function runStep(stageDir: string, instruction: Instruction, env: Record<string, string>): void {
  const command = instruction.args;
  if (/^npm ci\b/.test(command) && !command.includes('--omit=dev')) {
    // The shortcut described at the top: the same lockfile, already installed here.
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(stageDir, 'node_modules'), 'dir');
    return;
  }
  const result = spawnSync('env', ['-u', 'NODE_OPTIONS', 'sh', '-c', command], {
    cwd: stageDir,
    encoding: 'utf8',
    env: { ...process.env, ...env, npm_config_prefer_offline: 'true' },
  });
  if (result.status !== 0) {
    throw new Error(
      `Dockerfile:${instruction.line}: RUN ${command} exited ${String(result.status)}\n${result.stdout}${result.stderr}`,
    );
  }
}

function build(): { runtime: Stage; dir: string; env: Record<string, string> } {
  let env: Record<string, string> = {};
  for (const stage of dockerfile) {
    const dir = join(scratch, stage.name);
    mkdirSync(dir);
    stageDirs.set(stage.name, dir);
    env = {};
    for (const instruction of stage.instructions) {
      if (instruction.keyword === 'WORKDIR' && instruction.args !== WORKDIR) {
        throw new Error(`Dockerfile:${instruction.line}: this emulation knows WORKDIR ${WORKDIR} only`);
      }
      if (instruction.keyword === 'ENV') {
        for (const pair of instruction.args.split(/\s+/)) {
          const [key = '', ...value] = pair.split('=');
          env[key] = value.join('=');
        }
      }
      if (instruction.keyword === 'COPY') copy(dir, instruction);
      if (instruction.keyword === 'RUN') runStep(dir, instruction, env);
    }
  }
  const runtime = dockerfile.at(-1);
  const dir = runtime === undefined ? undefined : stageDirs.get(runtime.name);
  if (runtime === undefined || dir === undefined) throw new Error('the Dockerfile has no stage');
  return { runtime, dir, env };
}

const image = build();
const find = (keyword: string) => image.runtime.instructions.filter((i) => i.keyword === keyword);

// --- the image's shape -------------------------------------------------------------------------

t.test('multi-stage: built with dev dependencies, shipped on distroless without a shell', async (t) => {
  t.ok(dockerfile.length >= 2, `${dockerfile.length} stages`);
  t.match(image.runtime.from, /^gcr\.io\/distroless\/nodejs\d+-debian\d+:nonroot$/);
  t.same(find('RUN'), [], 'no RUN in the runtime stage: there is no shell to run it');
  const user = find('USER').at(-1)?.args ?? '';
  t.match(user, /^\d+:\d+$/, 'a numeric user:group, so runAsNonRoot can verify it');
  t.notOk(user.split(':').includes('0'), 'not root');
  t.equal(user, '65532:65532', 'the uid/gid the Deployment runs as');
  t.same(
    jsonArray(find('ENTRYPOINT').at(-1)),
    ['/nodejs/bin/node', '--max-semi-space-size=4', '--max-old-space-size=160', '/app/bin/portcullis'],
    'the image is the portcullis command, with the node flags the bench measures',
  );
  t.same(jsonArray(find('CMD').at(-1)), ['serve']);
  t.equal(find('EXPOSE').at(-1)?.args, '8443');
  for (const stage of dockerfile.slice(0, -1))
    t.match(stage.from, /^node:24-/, `${stage.name} builds on Node 24`);
});

t.test(
  'the runtime file set: production dependencies, dist, bin, the default rules — nothing else',
  async (t) => {
    t.same(readdirSync(image.dir).sort(), ['bin', 'dist', 'node_modules', 'package.json', 'rules']);
    t.same(readdirSync(join(image.dir, 'rules')), ['default.yaml']);
    t.ok(existsSync(join(image.dir, 'dist/cli/main.js')), 'compiled output');
    t.notOk(lstatSync(join(image.dir, 'node_modules')).isSymbolicLink(), 'a real production install');

    const pkg: unknown = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    for (const name of Object.keys(record(at(pkg, 'dependencies')))) {
      t.ok(existsSync(join(image.dir, 'node_modules', name, 'package.json')), `dependency ${name} installed`);
    }
    // Everything the lockfile marks dev-only must be absent.
    const lock: unknown = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8'));
    const devOnly = Object.entries(record(at(lock, 'packages')))
      .filter(([path, entry]) => path.startsWith('node_modules/') && isRecord(entry) && entry['dev'] === true)
      .map(([path]) => path);
    t.ok(devOnly.includes('node_modules/typescript'), 'the lockfile marks dev-only packages');
    const present = devOnly.filter((path) => existsSync(join(image.dir, path)));
    t.same(present, [], 'no dev-only package in the image');
  },
);

t.test('.dockerignore keeps the build context to what the Dockerfile copies', async (t) => {
  for (const path of [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'src/cli/main.ts',
    'bin/portcullis',
    'rules/default.yaml',
  ]) {
    t.notOk(ignored(ignoreRules, path), `${path} is in the context`);
  }
  for (const path of [
    '.git/config',
    'node_modules/yaml/package.json',
    'dist/cli/main.js',
    'test/manifests/image.test.ts',
    'manifests/overlays/portcullis-certs/certs/tls.key',
    'manifests/overlays/portcullis-certs/certs/ca.key',
    '.env',
    'coverage/index.html',
  ]) {
    t.ok(ignored(ignoreRules, path), `${path} stays out`);
  }
});

// --- the image runs ----------------------------------------------------------------------------

function portcullis(args: readonly string[]): [string, string[]] {
  // ENTRYPOINT ["/nodejs/bin/node", NODE_FLAGS…, "/app/bin/portcullis"]: this machine's node with the
  // image's flags, the emulated /app.
  const entrypoint = jsonArray(find('ENTRYPOINT').at(-1))
    .slice(1)
    .map((arg) => (arg.startsWith('-') ? arg : inStage(image.dir, arg)));
  return plainNode([...entrypoint, ...args]);
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  return typeof address === 'object' && address !== null ? address.port : 0;
}

function https(
  port: number,
  ca: string,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.end(body);
  });
}

t.test(
  'the production file set makes its certs, serves HTTPS, judges a review and stops on SIGTERM',
  async (t) => {
    const [helpCommand, helpArgs] = portcullis(['--help']);
    const help = spawnSync(helpCommand, helpArgs, { cwd: image.dir, encoding: 'utf8' });
    const commands = `${help.stdout}${help.stderr}`;
    if (!/\bserve\b/.test(commands) || !/\bcerts\b/.test(commands)) {
      t.fail(
        `bin/portcullis has no \`serve\`/\`certs\` command yet (issue 3): rerun once they land.\n${commands}`,
      );
      return;
    }

    const certDir = join(scratch, 'certs');
    const [certsCommand, certsArgs] = portcullis([
      'certs',
      '--service',
      'portcullis',
      '--namespace',
      'portcullis',
      '--out',
      certDir,
      '--ip',
      '127.0.0.1',
    ]);
    const certs = spawnSync(certsCommand, certsArgs, {
      cwd: image.dir,
      encoding: 'utf8',
      env: { ...process.env, ...image.env },
    });
    t.equal(certs.status, 0, `certs: ${certs.stderr}`);
    const ca = readFileSync(join(certDir, 'ca.crt'), 'utf8');
    t.equal(certs.stdout.trim(), Buffer.from(ca).toString('base64'), 'prints the caBundle');

    const port = await freePort();
    const cmd = jsonArray(find('CMD').at(-1));
    const [command, args] = portcullis([
    ...cmd,
    '--port', String(port), '--host', '127.0.0.1',
    '--tls-cert', join(certDir, 'tls.crt'), '--tls-key', join(certDir, 'tls.key'),
    '--audit-log', join(scratch, 'audit.jsonl'),
  ]); // prettier-ignore
    const server = spawn(command, args, {
      cwd: image.dir,
      env: { ...process.env, ...image.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    server.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) =>
      server.on('exit', (code) => {
        resolve(code);
      }),
    );
    t.teardown(() => {
      if (server.exitCode === null) server.kill('SIGKILL');
    });

    let health = { status: 0, body: '' };
    for (let i = 0; i < 100 && health.status !== 200 && server.exitCode === null; i++) {
      health = await https(port, ca, 'GET', '/healthz').catch(() => ({ status: 0, body: '' }));
      if (health.status !== 200) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    t.equal(health.status, 200, `GET /healthz over HTTPS, verified against ca.crt\n${output}`);
    t.equal(
      (await https(port, ca, 'GET', '/readyz')).status,
      200,
      'ready: the shipped rules and the cert are loaded',
    );

    const review: unknown = JSON.parse(
      readFileSync(join(REPO_ROOT, 'test/fixtures/admission/pod-create-from-replicaset.json'), 'utf8'),
    );
    const privileged = structuredClone(review);
    const containers = at(privileged, 'request', 'object', 'spec', 'containers');
    if (Array.isArray(containers) && isRecord(containers[0]))
      containers[0]['securityContext'] = { privileged: true };
    const answer = await https(port, ca, 'POST', '/validate', JSON.stringify(privileged));
    t.equal(answer.status, 200, answer.body);
    const response: unknown = JSON.parse(answer.body);
    t.equal(at(response, 'response', 'uid'), at(review, 'request', 'uid'));
    t.equal(at(response, 'response', 'allowed'), false, 'a privileged pod is denied by the shipped rules');
    t.match(String(at(response, 'response', 'status', 'message')), /no-privileged/);

    server.kill('SIGTERM');
    const code = await exited;
    t.equal(code, 0, `exits 0 on SIGTERM\n${output}`);
  },
);
