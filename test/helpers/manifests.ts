// Shared by test/manifests/*: rendering overlays that need files (certificates) in a scratch copy of
// the tree, schema validation through kubernetes-models, and small readers for rendered objects.

import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  alternateRender,
  isRecord,
  renderManifests,
  REPO_ROOT,
  type KubeObject,
  type OverlayCerts,
} from './webhooks.js';

export { isRecord, renderManifests, REPO_ROOT, type KubeObject };

export type CertFiles = OverlayCerts;

/** Stand-ins: kustomize only base64-encodes the files, it never parses them. */
export const PLACEHOLDER_CERTS: CertFiles = {
  'ca.crt': '-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n',
  'tls.crt': '-----BEGIN CERTIFICATE-----\ndGxz\n-----END CERTIFICATE-----\n',
  'tls.key': '-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n',
};

/**
 * Renders `manifests/<overlay>` from a scratch copy of manifests/ and rules/ with `certs` written
 * where overlays/portcullis-certs reads them (git-ignored in the real tree). `extra` adds files
 * relative to the copy's root, e.g. a kustomization of the test's own.
 */
export function renderInScratchTree(
  overlay: string,
  certs: CertFiles = PLACEHOLDER_CERTS,
  extra: Record<string, string> = {},
): KubeObject[] {
  const alternate = alternateRender(join(REPO_ROOT, 'manifests', overlay), certs, extra);
  if (alternate !== undefined) return alternate;
  const root = mkdtempSync(join(tmpdir(), 'portcullis-manifests-'));
  try {
    cpSync(join(REPO_ROOT, 'manifests'), join(root, 'manifests'), { recursive: true });
    cpSync(join(REPO_ROOT, 'rules'), join(root, 'rules'), { recursive: true });
    const certDir = join(root, 'manifests/overlays/portcullis-certs/certs');
    rmSync(certDir, { recursive: true, force: true });
    mkdirSync(certDir, { recursive: true });
    for (const [name, text] of Object.entries(certs)) writeFileSync(join(certDir, name), text);
    for (const [path, text] of Object.entries(extra)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    return renderManifests(join(root, 'manifests', overlay));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** `kubectl kustomize` output as text, for tools that read YAML files (`portcullis check`). */
export function renderText(dir: string): string {
  return execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
}

export function describe(o: KubeObject): string {
  const meta = record(o['metadata']);
  const namespace = typeof meta['namespace'] === 'string' ? `${meta['namespace']}/` : '';
  return `${o.apiVersion} ${o.kind} ${namespace}${String(meta['name'])}`;
}

// --- schema validation -------------------------------------------------------------------------

/** Kinds rendered by an overlay that kubernetes-models has no schema for. */
export const NO_SCHEMA_KINDS: ReadonlySet<string> = new Set([
  'cert-manager.io/v1 Issuer',
  'cert-manager.io/v1 Certificate',
  'monitoring.coreos.com/v1 ServiceMonitor',
  'monitoring.coreos.com/v1 PrometheusRule',
]);

interface ModelClass {
  new (data: unknown): { validate(): void };
}

function isModelClass(value: unknown): value is ModelClass {
  return typeof value === 'function';
}

export type SchemaResult = { kind: 'valid' } | { kind: 'invalid'; message: string } | { kind: 'no-schema' };

/**
 * Validates one object against the Kubernetes OpenAPI schema of its apiVersion and kind, as
 * compiled into kubernetes-models (`kubernetes-models/<apiVersion>/<Kind>`). Those schemas check
 * types, required fields and enums; they do not reject unknown fields (the real-API-server test,
 * test/e2e/manifests.test.ts, applies with strict field validation for that).
 */
export async function validateSchema(o: KubeObject): Promise<SchemaResult> {
  let module: unknown;
  try {
    module = await import(`kubernetes-models/${o.apiVersion}/${o.kind}`);
  } catch {
    return { kind: 'no-schema' };
  }
  const model: unknown = isRecord(module) ? module[o.kind] : undefined;
  if (!isModelClass(model)) return { kind: 'no-schema' };
  try {
    new model(o).validate();
    return { kind: 'valid' };
  } catch (err) {
    return { kind: 'invalid', message: err instanceof Error ? err.message : String(err) };
  }
}

// --- readers -----------------------------------------------------------------------------------

export function record(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

export function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function records(value: unknown): Record<string, unknown>[] {
  return list(value).filter(isRecord);
}

export function strings(value: unknown): string[] {
  return list(value).filter((v): v is string => typeof v === 'string');
}

/** The one object of this kind (and name, if given); throws when there is not exactly one. */
export function only(objects: readonly KubeObject[], kind: string, name?: string): KubeObject {
  const found = objects.filter(
    (o) => o.kind === kind && (name === undefined || record(o['metadata'])['name'] === name),
  );
  const [first] = found;
  if (first === undefined || found.length > 1) {
    throw new Error(`expected one ${kind}${name === undefined ? '' : ` ${name}`}, found ${found.length}`);
  }
  return first;
}

/** Reads `path` (keys and indexes) below `value`; undefined where it does not exist. */
export function at(value: unknown, ...path: (string | number)[]): unknown {
  let node = value;
  for (const key of path) {
    if (typeof key === 'number') node = Array.isArray(node) ? node[key] : undefined;
    else node = isRecord(node) ? node[key] : undefined;
  }
  return node;
}

/**
 * Whether a metav1.LabelSelector selects these labels (matchLabels and matchExpressions, as the API
 * server applies a webhook's namespaceSelector). An empty selector selects everything.
 */
export function selects(selector: unknown, labels: Record<string, string>): boolean {
  const s = record(selector);
  for (const [key, value] of Object.entries(record(s['matchLabels']))) {
    if (labels[key] !== value) return false;
  }
  for (const expression of records(s['matchExpressions'])) {
    const key = String(expression['key']);
    const values = strings(expression['values']);
    const has = Object.hasOwn(labels, key);
    const value = labels[key];
    switch (expression['operator']) {
      case 'In':
        if (!has || value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (has && value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        throw new Error(`unknown selector operator ${String(expression['operator'])}`);
    }
  }
  return true;
}

/** The labels the API server puts on every namespace. */
export function namespaceLabels(name: string): Record<string, string> {
  return { 'kubernetes.io/metadata.name': name };
}

/**
 * kustomize writes generated Secret data folded into lines of 70 characters, and a replacement
 * copies that text into each caBundle as it is. The API server's base64 decoder (Go's) skips line
 * breaks, so it accepts them (test/e2e/manifests.test.ts applies such a render); the schemas' `byte` format
 * does not. This joins the lines, on a copy, before schema validation and comparison.
 */
export function unfoldBase64(o: KubeObject): KubeObject {
  const copy = structuredClone(o);
  const unfold = (value: unknown): unknown => (typeof value === 'string' ? value.replace(/\n/g, '') : value);
  if (copy.kind === 'Secret' && isRecord(copy['data'])) {
    const data = copy['data'];
    for (const key of Object.keys(data)) data[key] = unfold(data[key]);
  }
  for (const webhook of records(copy['webhooks'])) {
    const clientConfig = webhook['clientConfig'];
    if (isRecord(clientConfig) && 'caBundle' in clientConfig)
      clientConfig['caBundle'] = unfold(clientConfig['caBundle']);
  }
  return copy;
}

/**
 * Command and arguments that run `node ARGS` as it would run outside the test runner. tap's
 * processinfo wraps child_process and puts its loaders into a child's NODE_OPTIONS (its require
 * hook then mistakes the extensionless, ESM `bin/portcullis` for CommonJS); `env -u` drops them at
 * exec time, after the wrapper has run.
 */
export function plainNode(args: readonly string[]): [string, string[]] {
  return ['env', ['-u', 'NODE_OPTIONS', process.execPath, ...args]];
}

/** The string-valued entries of a map (labels, annotations, a selector's matchLabels). */
export function stringMap(value: unknown): Record<string, string> {
  return Object.fromEntries(
    Object.entries(record(value)).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}
