// The Helm chart (charts/portcullis) as objects, rendered by the real `helm template`, and what keeps
// it in step with manifests/: the table of equivalent settings (a kustomize render and the chart
// values that must install the same objects) and a diff that names the object and field that differ.
//
// helm is built from its Go module by test/e2e/build-tools.sh and cached outside the repo; tests that
// need it skip, saying how to build it, unless PORTCULLIS_TOOLS_REQUIRED=1 (CI sets it) makes a missing
// helm a failure.

import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  isRecord,
  MANIFESTS_DIR,
  parseObjects,
  REPO_ROOT,
  setAlternateRenderer,
  type KubeObject,
  type OverlayCerts,
} from './webhooks.js';

export const CHART_DIR = join(REPO_ROOT, 'charts/portcullis');
/** The Kubernetes version `helm template` renders for (the chart requires >= 1.30; the e2e API server's). */
export const KUBE_VERSION = '1.34.10';

const BUILD_TOOLS = join(REPO_ROOT, 'test/e2e/build-tools.sh');

/** A default of build-tools.sh (`NAME="${NAME:-value}"`), so the tests look where the script builds. */
function scriptDefault(name: string): string {
  const match = new RegExp(`^${name}="\\$\\{${name}:-([^}]+)\\}"$`, 'm').exec(
    readFileSync(BUILD_TOOLS, 'utf8'),
  );
  if (match?.[1] === undefined) throw new Error(`${BUILD_TOOLS}: no default for ${name}`);
  return match[1];
}

function toolsCache(): string {
  return process.env['PORTCULLIS_TOOLS_CACHE'] ?? join(homedir(), '.cache/portcullis-tools');
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export type Tool = { path: string } | { missing: string };

/** A tool build-tools.sh builds: `$<NAME>_BIN`, or its place in the cache. */
function findTool(name: 'helm' | 'promtool', versionVariable: string): Tool {
  const fromEnv = process.env[`${name.toUpperCase()}_BIN`];
  const path = fromEnv ?? join(toolsCache(), `${name}-${scriptDefault(versionVariable)}`, name);
  if (executable(path)) return { path };
  return { missing: `${path} is not built (bash test/e2e/build-tools.sh builds it)` };
}

export const findHelm = (): Tool => findTool('helm', 'HELM_VERSION');
export const findPromtool = (): Tool => findTool('promtool', 'PROMETHEUS_VERSION');

/** `{ skip: reason }` for a tap test when the tool is missing, unless CI requires it. */
export function skipWithout(tool: Tool): { skip?: string } {
  if ('path' in tool) return {};
  if (process.env['PORTCULLIS_TOOLS_REQUIRED'] === '1') {
    throw new Error(`PORTCULLIS_TOOLS_REQUIRED=1 but ${tool.missing}`);
  }
  return { skip: tool.missing };
}

function helmPath(): string {
  const helm = findHelm();
  if ('missing' in helm) throw new Error(helm.missing);
  return helm.path;
}

export type ChartValues = Record<string, unknown>;

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs helm with `values` in a values file (JSON is YAML); never throws for a non-zero exit. */
export function helm(args: readonly string[], values: ChartValues = {}): HelmResult {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-chart-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, JSON.stringify(values));
    const stdout = execFileSync(helmPath(), [...args, '-f', file], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HELM_CACHE_HOME: join(dir, 'cache'), HELM_CONFIG_HOME: join(dir, 'config') },
    });
    return { status: 0, stdout, stderr: '' };
  } catch (err) {
    if (!isRecord(err)) throw err;
    const text = (key: string): string => (typeof err[key] === 'string' ? err[key] : '');
    return {
      status: typeof err['status'] === 'number' ? err['status'] : null,
      stdout: text('stdout'),
      stderr: text('stderr'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template portcullis charts/portcullis -n NAMESPACE` with `values`, as objects. */
export function renderChart(values: ChartValues = {}, namespace = 'portcullis'): KubeObject[] {
  const result = helm(
    ['template', 'portcullis', CHART_DIR, '--namespace', namespace, '--kube-version', KUBE_VERSION],
    values,
  );
  if (result.status !== 0) {
    throw new Error(`helm template with ${JSON.stringify(values)} failed: ${result.stderr.trim()}`);
  }
  return parseObjects(result.stdout, 'helm template');
}

/** The stderr of a `helm template` that must fail (throws if it succeeds). */
export function chartRefuses(values: ChartValues): string {
  const result = helm(
    ['template', 'portcullis', CHART_DIR, '--namespace', 'portcullis', '--kube-version', KUBE_VERSION],
    values,
  );
  if (result.status === 0) throw new Error(`helm template with ${JSON.stringify(values)} succeeded`);
  return result.stderr.trim();
}

// --- what Helm adds --------------------------------------------------------------------------

/**
 * The labels the chart puts on every object's metadata (never on selectors or the pod template),
 * which kustomize's render does not have: Helm's usual ones. The comparison removes exactly these,
 * after test/manifests/chart.test.ts has checked each object carries them.
 */
export const HELM_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/instance': 'portcullis',
  'app.kubernetes.io/managed-by': 'Helm',
  'app.kubernetes.io/version': chartField('appVersion'),
  'helm.sh/chart': `portcullis-${chartField('version')}`,
};

function chartField(field: 'version' | 'appVersion'): string {
  const match = new RegExp(`^${field}: *(\\S+)$`, 'm').exec(
    readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8'),
  );
  if (match?.[1] === undefined) throw new Error(`charts/portcullis/Chart.yaml has no ${field}`);
  return match[1];
}

export function withoutHelmLabels(o: KubeObject): KubeObject {
  const copy = structuredClone(o);
  const metadata = copy['metadata'];
  const labels = isRecord(metadata) ? metadata['labels'] : undefined;
  if (isRecord(labels)) for (const key of Object.keys(HELM_LABELS)) Reflect.deleteProperty(labels, key);
  return copy;
}

// --- the diff --------------------------------------------------------------------------------

/** `apiVersion kind namespace/name`: what identifies an object to the API server. */
export function objectKey(o: KubeObject): string {
  const metadata = isRecord(o['metadata']) ? o['metadata'] : {};
  const namespace = typeof metadata['namespace'] === 'string' ? `${metadata['namespace']}/` : '';
  return `${o.apiVersion} ${o.kind} ${namespace}${String(metadata['name'])}`;
}

function show(value: unknown): string {
  if (value === undefined) return '(absent)';
  const text = JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Every leaf where `a` and `b` differ, as `path: left X, right Y`; lists compared index by index. */
function fieldDiffs(a: unknown, b: unknown, path: string, names: [string, string], out: string[]): void {
  if (isDeepStrictEqual(a, b)) return;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      fieldDiffs(a[i], b[i], `${path}[${i}]`, names, out);
    }
    return;
  }
  if (isRecord(a) && isRecord(b)) {
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const next = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)
        ? `${path}.${key}`
        : `${path}[${JSON.stringify(key)}]`;
      fieldDiffs(a[key], b[key], next, names, out);
    }
    return;
  }
  out.push(`${path.replace(/^\./, '')}: ${names[0]} ${show(a)}, ${names[1]} ${show(b)}`);
}

/**
 * What differs between two renders, one line per difference: objects only one of them has, and per
 * object each field that differs, e.g.
 * `apps/v1 Deployment portcullis/portcullis: spec.replicas: kustomize 2, helm 3`.
 */
export function diffRenders(
  left: readonly KubeObject[],
  right: readonly KubeObject[],
  names: [string, string] = ['kustomize', 'helm'],
): string[] {
  const index = (objects: readonly KubeObject[]) => {
    const map = new Map<string, KubeObject>();
    for (const o of objects) {
      const key = objectKey(o);
      if (map.has(key)) throw new Error(`${key} is rendered twice`);
      map.set(key, o);
    }
    return map;
  };
  const [a, b] = [index(left), index(right)];
  const out: string[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const [x, y] = [a.get(key), b.get(key)];
    if (x === undefined) out.push(`${key}: only in ${names[1]}`);
    else if (y === undefined) out.push(`${key}: only in ${names[0]}`);
    else {
      const fields: string[] = [];
      fieldDiffs(x, y, '', names, fields);
      out.push(...fields.map((f) => `${key}: ${f}`));
    }
  }
  return out;
}

// --- equivalent settings ---------------------------------------------------------------------

export function certValues(certs: OverlayCerts): ChartValues {
  return { caCrt: certs['ca.crt'], tlsCrt: certs['tls.crt'], tlsKey: certs['tls.key'] };
}

/**
 * The chart values that install what a kustomize directory under manifests/ installs. The
 * Namespace is rendered (namespace.create) because kustomize renders it; the chart's own default
 * leaves it out (charts/portcullis/values.yaml says why).
 */
export function equivalentValues(overlay: string, certs: OverlayCerts): ChartValues {
  const namespace = { create: true };
  switch (overlay) {
    case '':
    case 'base':
      return { namespace, certificates: { source: 'external' } };
    case 'overlays/cert-manager':
      return { namespace, certificates: { source: 'cert-manager' } };
    case 'overlays/portcullis-certs':
      return { namespace, certificates: { source: 'portcullis', ...certValues(certs) } };
    case 'overlays/local-url':
      return {
        namespace,
        certificates: { source: 'portcullis', ...certValues(certs) },
        webhooks: { url: 'https://127.0.0.1:8443' },
      };
    default:
      throw new Error(`no chart values are known to be equivalent to manifests/${overlay}`);
  }
}

/**
 * Makes test/helpers' renderManifests and renderInScratchTree render the chart with the equivalent
 * values instead, so a manifest test file imported after this call asserts the same things of the
 * Helm render (test/manifests/helm/*.test.ts).
 */
export function useChartRenders(): void {
  setAlternateRenderer((dir, certs, extra) => {
    if (Object.keys(extra).length > 0) {
      throw new Error(
        `a kustomization of the test's own (${Object.keys(extra).join(', ')}) has no chart equivalent`,
      );
    }
    const overlay = relative(MANIFESTS_DIR, resolve(dir)).replace(/\\/g, '/');
    if (overlay.startsWith('..')) throw new Error(`${dir} is not under manifests/`);
    return renderChart(equivalentValues(overlay, certs));
  });
}
