// The admission webhook over HTTPS: transport only. This file makes the TLS server with its bounds
// (timeouts, connections, bodies), follows certificate rotation and shuts down; the routes are
// plugins: admission-routes.ts (/validate, /mutate), probes.ts (/healthz, /readyz) and metrics.ts
// (/metrics). Every judgement comes from the core through admission.ts, so the webhook and
// `check` cannot disagree.

import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyError } from 'fastify';
import type { Logger } from 'pino';
import { clock as wallClock } from '../audit/event.js';
import type { AuditSink } from '../audit/sink.js';
import type { ClusterRolesWatch } from '../config/cluster-roles-watch.js';
import type { ConfigMapRef } from '../config/rules-configmap.js';
import { admissionRoutes } from './admission-routes.js';
import { BodyBudget, type BodyLimits } from './body.js';
import {
  CertificateWatcher,
  type CertificateFiles,
  type ServingCertificate,
  type WatchOptions,
} from './certificates.js';
import { clientAuthTlsOptions, type ClientAuthOptions } from './client-auth.js';
import { metricsRoute, type Metrics } from './metrics.js';
import type { PodLabelLookup } from './pod-lookup.js';
import { notReadyReasons, probes } from './probes.js';
import type { RuleSetHolder } from './ruleset-holder.js';
import { status } from './status.js';

/** The API server sends objects up to 3 MiB, and an UPDATE carries two of them plus the envelope. */
export const BODY_LIMIT = 8 * 1024 * 1024;
/**
 * Bodies being received at once may hold this much beyond their allowance: four maximal UPDATEs,
 * far more than the API server ever has in flight to one replica, and with the rest of the
 * process well inside the shipped 256 MiB memory limit.
 */
export const BODY_BUDGET = 32 * 1024 * 1024;
/** What every body may hold without drawing on the budget: a Pod review is 5–20 KB. */
export const BODY_ALLOWANCE = 32 * 1024;
/** Connections beyond this are closed at once: each holds TLS state, and its body allowance. */
export const MAX_CONNECTIONS = 1024;
/** Longer than the 90 s the API server keeps an idle connection, so it always closes first. */
export const KEEP_ALIVE_TIMEOUT_MS = 120_000;
/**
 * A request must arrive whole within this (headers within the shorter one), or its connection is
 * closed: shorter than the 30 s the API server waits at most for a webhook, so nothing is held
 * for a caller the API server itself would have given up on.
 */
export const REQUEST_TIMEOUT_MS = 15_000;
export const HEADERS_TIMEOUT_MS = 10_000;
/** How often Node looks for requests past their timeout (its default, 30 s, would double them). */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

export interface ServerOptions {
  rules: RuleSetHolder;
  /** `serve --rules-configmap`: /validate judges edits of that ConfigMap by the RuleSet they carry. */
  rulesConfigMap?: ConfigMapRef;
  /** Namespace objects by name, kept current by a watch (`cel` rules read them). */
  namespaces?: ReadonlyMap<string, unknown>;
  certificate: ServingCertificate;
  /** `serve` in a cluster: the watched ClusterRoles; not ready until they are listed. */
  clusterRoles?: ClusterRolesWatch;
  /** Watched for rotation when given; a pair given only in memory is served as is. */
  certificateFiles?: CertificateFiles;
  watch?: WatchOptions;
  /** `serve --client-ca`: only callers with a client certificate from this CA are judged. */
  clientAuth?: ClientAuthOptions;
  audit: readonly AuditSink[];
  metrics: Metrics;
  logger: Logger;
  bodyLimit?: number;
  bodyBudget?: number;
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  /** How long shutdown waits for requests in flight before closing their connections. */
  shutdownTimeoutMs?: number;
  /** Epoch milliseconds with a fraction; tests pass their own to assert exact timestamps. */
  clock?: () => number;
  /** Looks up the pod a CONNECT goes into when a rule needs its labels; without it they are unknown. */
  lookupPod?: PodLabelLookup;
}

export interface AdmissionServer {
  listen(address: { host: string; port: number }): Promise<{ host: string; port: number }>;
  /** The pair new connections get. */
  readonly certificate: ServingCertificate;
  /** Stops accepting, finishes requests in flight, then flushes and closes the audit sinks. */
  shutdown(): Promise<void>;
}

export async function createServer(options: ServerOptions): Promise<AdmissionServer> {
  const { rules, metrics, logger } = options;
  const clock = options.clock ?? wallClock;
  // The same lookup for every request: the watch updates it in place.
  const context = options.clusterRoles === undefined ? {} : { roles: options.clusterRoles.roles };
  const bodyLimit = options.bodyLimit ?? BODY_LIMIT;
  const body: BodyLimits = {
    maxBytes: bodyLimit,
    budgetBytes: options.bodyBudget ?? BODY_BUDGET,
    allowanceBytes: Math.min(BODY_ALLOWANCE, bodyLimit),
  };
  const requestTimeout = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  // setSecureContext replaces every context option, so the client CA goes in each time too.
  const tlsOptions = (pair: ServingCertificate) => ({
    key: pair.key,
    cert: pair.cert,
    minVersion: 'TLSv1.2' as const,
    ...(options.clientAuth === undefined ? {} : clientAuthTlsOptions(options.clientAuth)),
  });
  const app = Fastify({
    https: {
      ...tlsOptions(options.certificate),
      headersTimeout: Math.min(options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS, requestTimeout),
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, requestTimeout),
    },
    loggerInstance: logger,
    // No line per request: the audit event is that record, and the hot path stays lean.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    requestTimeout,
    clientErrorHandler: (error, socket) => {
      answerClientError(error, socket, requestTimeout);
    },
    // A request that reaches a closing server is still answered (with Connection: close), not
    // refused with a 503 the API server would count against the webhook.
    return503OnClosing: false,
  });
  app.server.maxConnections = MAX_CONNECTIONS;
  let closing = false;
  let certificate = options.certificate;
  metrics.certificateExpiry.set(certificate.notAfter.getTime() / 1000);

  const watcher =
    options.certificateFiles === undefined
      ? undefined
      : new CertificateWatcher(
          options.certificateFiles,
          certificate,
          (next) => {
            app.server.setSecureContext(tlsOptions(next));
            certificate = next;
            metrics.certificateExpiry.set(next.notAfter.getTime() / 1000);
          },
          logger,
          options.watch,
        );

  // Routes outside the admission plugin (probes, metrics, unknown paths) answer errors the same way.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const code = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
    if (code >= 500) request.log.error({ err: error }, 'request failed');
    return reply.code(code).send(status(code, code >= 500 ? 'internal error' : error.message));
  });
  // Requests in flight when shutdown began were accepted on a keep-alive connection: close it
  // after their answer so the server can finish closing.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close');
    done(null, payload);
  });

  await app.register(admissionRoutes, {
    rules,
    rulesConfigMap: options.rulesConfigMap,
    namespaces: options.namespaces,
    context,
    lookupPod: options.lookupPod,
    audit: options.audit,
    metrics,
    logger,
    clock,
    body,
    budget: new BodyBudget(body.budgetBytes),
    clientAuth: options.clientAuth,
  });
  const probeOptions = {
    rules,
    rulesConfigMap: options.rulesConfigMap,
    clusterRoles: options.clusterRoles,
    context,
    certificate: () => certificate,
    closing: () => closing,
    clock,
  };
  await app.register(probes, probeOptions);
  await app.register(metricsRoute, { metrics, ready: () => notReadyReasons(probeOptions).length === 0 });

  await app.ready();
  let shuttingDown: Promise<void> | undefined;

  return {
    async listen({ host, port }) {
      await app.listen({ host, port });
      watcher?.start();
      const address = app.server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : port;
      logger.info(
        { host, port: bound, ruleset: rules.current?.hash, serialNumber: certificate.serialNumber },
        'listening',
      );
      return { host, port: bound };
    },
    get certificate() {
      return certificate;
    },
    shutdown() {
      shuttingDown ??= (async () => {
        closing = true;
        watcher?.close();
        const force = setTimeout(() => {
          logger.warn('requests still in flight at the shutdown deadline; closing their connections');
          app.server.closeAllConnections();
        }, options.shutdownTimeoutMs ?? 20_000).unref();
        await app.close();
        clearTimeout(force);
        await Promise.all(options.audit.map((sink) => sink.close()));
        logger.info('shut down');
      })();
      return shuttingDown;
    },
  };
}

/**
 * Errors Node finds before a request reaches a route (a request past its timeout, headers too
 * large, bytes that are not HTTP) get a metav1.Status like every other refusal, and the connection
 * is closed: what it carries next cannot be trusted to start a request.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex, requestTimeoutMs: number): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [code, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, `the request did not arrive in full within ${requestTimeoutMs / 1000} s`]
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'the request headers are larger than accepted']
        : [400, 'the request is not valid HTTP/1.1'];
  if (socket.writable) {
    const body = JSON.stringify(status(code, message));
    socket.write(
      `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
