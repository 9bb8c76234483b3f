// A real Portcullis server on loopback HTTPS (port 0, a CA made for the test), an in-memory audit
// sink, and an HTTPS client that verifies with that CA and reports the certificate it was shown.

import { readFileSync } from 'node:fs';
import https from 'node:https';
import { TLSSocket } from 'node:tls';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { AuditEvent } from '../../src/audit/event.js';
import type { AuditSink } from '../../src/audit/sink.js';
import {
  DEFAULT_RULES_PATH,
  loadRuleSetFile,
  parseRuleSet,
  type LoadedRuleSet,
} from '../../src/config/ruleset-source.js';
import {
  checkPair,
  type CertificateFiles,
  type ServingCertificate,
  type WatchOptions,
} from '../../src/server/certificates.js';
import type { ClusterRolesWatch } from '../../src/config/cluster-roles-watch.js';
import type { ConfigMapRef } from '../../src/config/rules-configmap.js';
import { createMetrics, type Metrics } from '../../src/server/metrics.js';
import { RuleSetHolder } from '../../src/server/ruleset-holder.js';
import type { PodLabelLookup } from '../../src/server/pod-lookup.js';
import { createServer, type AdmissionServer, type ServerOptions } from '../../src/server/server.js';
import { generateCertificates, type GeneratedCertificates } from '../../src/tls/certs.js';

export const FIXTURE = new URL('../fixtures/admission/pod-create-from-replicaset.json', import.meta.url);

/**
 * What kube-apiserver 1.34 sent for `kubectl exec web -c web -- sh -c 'cat /var/run/secrets/x'`
 * (kubectl 1.32), captured: CONNECT pods/exec, the PodExecOptions as the object, no pod.
 */
export function podExecReview(): { apiVersion: string; kind: string; request: Record<string, unknown> } {
  return JSON.parse(
    readFileSync(new URL('../fixtures/admission/pod-exec-connect.json', import.meta.url), 'utf8'),
  ) as ReturnType<typeof podExecReview>;
}

/** The Pod CREATE the ReplicaSet controller sends, parsed afresh for each caller to change. */
export function podCreateReview(): {
  apiVersion: string;
  kind: string;
  request: Record<string, unknown> & { object: Pod };
} {
  return JSON.parse(readFileSync(FIXTURE, 'utf8')) as ReturnType<typeof podCreateReview>;
}

export interface Pod {
  metadata: Record<string, unknown>;
  spec: Record<string, unknown> & {
    securityContext?: Record<string, unknown>;
    containers: (Record<string, unknown> & { securityContext?: Record<string, unknown> })[];
    initContainers?: Record<string, unknown>[];
    volumes?: Record<string, unknown>[];
  };
}

export class MemorySink implements AuditSink {
  readonly name = 'memory';
  readonly events: AuditEvent[] = [];
  closed = false;
  write(event: AuditEvent): void {
    this.events.push(event);
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

export async function localhostCertificates(
  ca?: GeneratedCertificates['ca'],
): Promise<GeneratedCertificates> {
  return generateCertificates({
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    days: 1,
    ...(ca ? { ca } : {}),
  });
}

export function serving(generated: { cert: string; key: string }): ServingCertificate {
  const checked = checkPair(generated);
  if (!checked.ok) throw new Error(checked.error);
  return checked.certificate;
}

export async function defaultRules(): Promise<LoadedRuleSet> {
  const load = await loadRuleSetFile(DEFAULT_RULES_PATH);
  if (!load.ok) throw new Error(load.errors.join('\n'));
  return load.loaded;
}

/** The hash of the RuleSet in force; a test that needs one fails here when there is none. */
export function currentHash(rules: RuleSetHolder): string {
  const current = rules.current;
  if (current === undefined) throw new Error('the test server has no RuleSet in force');
  return current.hash;
}

export function rulesFromText(text: string): LoadedRuleSet {
  const load = parseRuleSet(text, 'test.yaml');
  if (!load.ok) throw new Error(load.errors.join('\n'));
  return load.loaded;
}

export interface TestServer {
  origin: string;
  ca: string;
  server: AdmissionServer;
  metrics: Metrics;
  rules: RuleSetHolder;
  audit: MemorySink;
  /** Lines the server logged. */
  logs(): Record<string, unknown>[];
  request(path: string, options?: RequestOptions): Promise<Reply>;
  close(): Promise<void>;
}

export interface StartOptions {
  certificates: GeneratedCertificates;
  /** The shipped default when left out; `null` starts the server with no RuleSet (not ready). */
  rules?: LoadedRuleSet | null;
  rulesConfigMap?: ConfigMapRef;
  /** What `serve --rules-configmap` watches: the cluster's ClusterRoles. */
  clusterRoles?: ClusterRolesWatch;
  certificateFiles?: CertificateFiles;
  watch?: WatchOptions;
  sinks?: AuditSink[];
  bodyLimit?: number;
  metrics?: Metrics;
  lookupPod?: PodLabelLookup;
  server?: Partial<
    Pick<
      ServerOptions,
      'clientAuth' | 'bodyBudget' | 'requestTimeoutMs' | 'headersTimeoutMs' | 'clock' | 'shutdownTimeoutMs'
    >
  >;
}

export async function startServer(options: StartOptions): Promise<TestServer> {
  const chunks: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString('utf8'));
        callback();
      },
    }),
  );
  const metrics = options.metrics ?? createMetrics();
  const initial = options.rules === undefined ? await defaultRules() : options.rules;
  const rules = new RuleSetHolder(metrics, initial ?? undefined);
  const audit = new MemorySink();
  const server = await createServer({
    rules,
    ...(options.rulesConfigMap ? { rulesConfigMap: options.rulesConfigMap } : {}),
    ...(options.clusterRoles ? { clusterRoles: options.clusterRoles } : {}),
    certificate: serving(options.certificates),
    ...(options.certificateFiles ? { certificateFiles: options.certificateFiles } : {}),
    ...(options.watch ? { watch: options.watch } : {}),
    ...(options.bodyLimit ? { bodyLimit: options.bodyLimit } : {}),
    ...(options.lookupPod ? { lookupPod: options.lookupPod } : {}),
    audit: [audit, ...(options.sinks ?? [])],
    metrics,
    logger,
    ...options.server,
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const origin = `https://127.0.0.1:${port}`;
  const ca = options.certificates.ca.cert;
  const agent = new https.Agent({ keepAlive: true, ca });
  return {
    origin,
    ca,
    server,
    metrics,
    rules,
    audit,
    logs: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    request: (path, requestOptions = {}) => request(`${origin}${path}`, { agent, ...requestOptions, ca }),
    close: async () => {
      agent.destroy();
      await server.shutdown();
    },
  };
}

export interface RequestOptions {
  method?: string;
  body?: string | Buffer | object;
  headers?: Record<string, string>;
  /** An agent to reuse connections; false for a new TLS connection per request. */
  agent?: https.Agent | false;
  ca?: string;
  /** A client certificate and key (PEM) to present. */
  cert?: string;
  key?: string;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => unknown;
  /** Serial of the certificate the server presented on this connection. */
  serialNumber: string;
}

export function request(url: string, options: RequestOptions = {}): Promise<Reply> {
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string' || Buffer.isBuffer(options.body)
        ? options.body
        : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: options.method ?? (body === undefined ? 'GET' : 'POST'),
        agent: options.agent ?? false,
        ...(options.ca ? { ca: options.ca } : {}),
        ...(options.cert ? { cert: options.cert } : {}),
        ...(options.key ? { key: options.key } : {}),
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...options.headers,
        },
      },
      (res) => {
        const serialNumber =
          res.socket instanceof TLSSocket ? res.socket.getPeerCertificate().serialNumber : '';
        const parts: Buffer[] = [];
        res.on('data', (chunk: Buffer) => parts.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text) as unknown,
            serialNumber,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The AdmissionReview `response` of a reply, typed for assertions. */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string };
  warnings?: string[];
  patchType?: string;
  patch?: string;
  auditAnnotations: Record<string, string>;
}

export function admissionResponse(reply: Reply): AdmissionResponse {
  const body = reply.json() as { response: AdmissionResponse };
  return body.response;
}
