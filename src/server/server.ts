// The admission webhook over HTTPS: transport only. Parsing, timing, auditing and sending happen
// here; every judgement comes from the core through admission.ts, so the webhook and `check`
// cannot disagree.

import { randomUUID } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { parseAdmissionReview, type AdmissionReview } from '../admission/review.js';
import {
  admissionEvent,
  clock,
  rejectedEvent,
  type AuditEvent,
  type Endpoint,
  type RequestFacts,
} from '../audit/event.js';
import type { AuditSink } from '../audit/sink.js';
import type { ClusterRolesWatch } from '../config/cluster-roles-watch.js';
import type { ConfigMapRef } from '../config/rules-configmap.js';
import {
  formatRules,
  mutateReview,
  validateReview,
  type AdmissionReviewAnswer,
  type Answer,
  type Judge,
} from './admission.js';
import {
  CertificateWatcher,
  type CertificateFiles,
  type ServingCertificate,
  type WatchOptions,
} from './certificates.js';
import { RequestError, parseJsonBody } from './json-body.js';
import type { PodLabelLookup } from './pod-lookup.js';
import type { Metrics } from './metrics.js';
import type { RuleSetHolder } from './ruleset-holder.js';
import { isObject } from '../core/read.js';
import { wantsConnectPod, type EvaluationContext } from '../core/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** clock() when the request arrived, for the audit event and the latency histogram. */
    receivedAt: number;
  }
}

/** The API server sends objects up to 3 MiB, and an UPDATE carries two of them plus the envelope. */
export const BODY_LIMIT = 8 * 1024 * 1024;
/** Longer than the 90 s the API server keeps an idle connection, so it always closes first. */
export const KEEP_ALIVE_TIMEOUT_MS = 120_000;

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
  audit: readonly AuditSink[];
  metrics: Metrics;
  logger: Logger;
  bodyLimit?: number;
  /** How long shutdown waits for requests in flight before closing their connections. */
  shutdownTimeoutMs?: number;
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

const STATUS_REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

/** Error bodies are metav1.Status, which the API server knows how to read into its own error. */
function status(code: number, message: string) {
  const reason = STATUS_REASONS[code] ?? (code < 500 ? 'BadRequest' : 'InternalError');
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

// Compiled once by fast-json-stringify; anything not listed here is not sent.
const ANSWER_SCHEMA = {
  200: {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      response: {
        type: 'object',
        properties: {
          uid: { type: 'string' },
          allowed: { type: 'boolean' },
          status: {
            type: 'object',
            properties: {
              code: { type: 'integer' },
              message: { type: 'string' },
              reason: { type: 'string' },
            },
          },
          warnings: { type: 'array', items: { type: 'string' } },
          patchType: { type: 'string' },
          patch: { type: 'string' },
          auditAnnotations: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
    },
  },
};

const ENDPOINTS: ReadonlyMap<string, Endpoint> = new Map([
  ['/validate', 'validate'],
  ['/mutate', 'mutate'],
]);

function tlsOptions(pair: ServingCertificate): SecureContextOptions {
  // setSecureContext replaces every option, so the minimum version goes in each time.
  return { key: pair.key, cert: pair.cert, minVersion: 'TLSv1.2' };
}

export async function createServer(options: ServerOptions): Promise<AdmissionServer> {
  const { rules, metrics, logger } = options;
  // The same lookup for every request: the watch updates it in place.
  const context = options.clusterRoles === undefined ? {} : { roles: options.clusterRoles.roles };
  const bodyLimit = options.bodyLimit ?? BODY_LIMIT;
  const app = Fastify({
    https: tlsOptions(options.certificate),
    loggerInstance: logger,
    // No line per request: the audit event is that record, and the hot path stays lean.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // A request that reaches a closing server is still answered (with Connection: close), not
    // refused with a 503 the API server would count against the webhook.
    return503OnClosing: false,
  });
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

  const audit = (event: AuditEvent): void => {
    for (const sink of options.audit) sink.write(event);
  };
  const facts = (request: FastifyRequest, endpoint: Endpoint): RequestFacts => ({
    endpoint,
    requestURI: request.url,
    sourceIP: request.ip,
    userAgent: request.headers['user-agent'],
    receivedAt: request.receivedAt,
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(typeof body === 'string' ? body : body.toString('utf8')));
    } catch (err) {
      done(err instanceof Error ? err : new Error(String(err)), undefined);
    }
  });
  app.decorateRequest('receivedAt', 0);

  app.setErrorHandler((error: FastifyError | RequestError, request, reply) => {
    const code = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
    const message =
      code >= 500
        ? 'internal error'
        : error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? `content type ${JSON.stringify(request.headers['content-type'] ?? '')} is not accepted: send application/json`
          : error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
            ? `body is larger than the ${bodyLimit} bytes accepted`
            : error.message;
    if (code >= 500) request.log.error({ err: error }, 'admission request failed');
    const body = status(code, message);
    const endpoint = ENDPOINTS.get(request.routeOptions.url ?? '');
    if (endpoint !== undefined) {
      const event = rejectedEvent(
        facts(request, endpoint),
        uidOf(request.body) ?? randomUUID(),
        { code, reason: body.reason, message },
        rules.current,
        clock(),
      );
      audit(event);
      metrics.decisions.inc({ endpoint, decision: 'invalid' });
    }
    return reply.code(code).send(body);
  });

  const route = (endpoint: Endpoint, answer: (review: AdmissionReview, judge: Judge) => Answer) => ({
    schema: { response: ANSWER_SCHEMA },
    onRequest: (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
      request.receivedAt = clock();
      done();
    },
    handler: (request: FastifyRequest) => {
      const parsed = parseAdmissionReview(request.body);
      if (!parsed.ok) throw new RequestError(400, 'PORTCULLIS_ERR_INVALID_REVIEW', parsed.message);
      // Read once: a RuleSet swapped in meanwhile applies from the next request on.
      const loaded = rules.current;
      const respond = (extra?: EvaluationContext): AdmissionReviewAnswer => {
        const judge = {
          loaded,
          rulesConfigMap: options.rulesConfigMap,
          namespaces: options.namespaces,
          context: extra === undefined ? context : { ...context, ...extra },
        };
        const result: Answer = answer(parsed.review, judge);
        const completedAt = clock();
        // Enqueued before the answer leaves, so no answer is ever sent without its event.
        audit(
          admissionEvent(
            facts(request, endpoint),
            {
              request: parsed.review.request,
              code: result.code,
              message: result.message,
              decision: result.decision,
              violations: formatRules(result.rules),
              exceptions: result.exceptions,
              ruleset: loaded,
            },
            completedAt,
          ),
        );
        metrics.decisions.inc({ endpoint, decision: result.decision });
        for (const { rule, action } of result.rules) metrics.ruleResults.inc({ rule, action });
        for (const exception of result.lapsed) {
          metrics.exceptionLapsed.inc({ exception });
          logger.warn({ exception, uid: parsed.review.request.uid }, 'exception matched but is not in force');
        }
        metrics.latency.observe({ endpoint }, (completedAt - request.receivedAt) / 1000);
        return result.review;
      };
      // Only a CONNECT that a podSelector rule judges waits on the API server (bounded by the
      // lookup's own timeout); every other request is answered synchronously.
      const admission = parsed.review.request;
      if (endpoint === 'validate' && loaded !== undefined && wantsConnectPod(admission, loaded.ruleset)) {
        const lookup = options.lookupPod;
        if (lookup === undefined) {
          return respond({ connectPod: { ok: false, error: 'this server does not look pods up' } });
        }
        return lookup(admission.namespace ?? '', admission.name ?? '').then((connectPod) =>
          respond({ connectPod }),
        );
      }
      return respond();
    },
  });
  app.post('/validate', route('validate', validateReview));
  app.post('/mutate', route('mutate', mutateReview));

  // Requests in flight when shutdown began were accepted on a keep-alive connection: close it
  // after their answer so the server can finish closing.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close');
    done(null, payload);
  });

  app.get('/healthz', () => ({ status: 'ok' }));
  const notReadyReasons = (): string[] => {
    const reasons: string[] = [];
    if (closing) reasons.push('shutting down');
    if (rules.current === undefined) reasons.push('no valid RuleSet loaded');
    const roles = options.clusterRoles?.notReady();
    if (roles !== undefined) reasons.push(roles);
    else {
      const failure = selfCheck({ loaded: rules.current, rulesConfigMap: options.rulesConfigMap, context });
      if (failure !== undefined) reasons.push(`admission self-check failed: ${failure}`);
    }
    if (certificate.notAfter.getTime() <= Date.now()) reasons.push('serving certificate has expired');
    return reasons;
  };
  app.get('/readyz', (_request, reply) => {
    const reasons = notReadyReasons();
    const body = {
      status: reasons.length === 0 ? 'ready' : 'not ready',
      reasons,
      ruleset: rules.current?.hash ?? null,
      certificate: { serialNumber: certificate.serialNumber, notAfter: certificate.notAfter.toISOString() },
    };
    return reply.code(reasons.length === 0 ? 200 : 503).send(body);
  });
  app.get('/metrics', async (_request, reply) => {
    metrics.ready.set(notReadyReasons().length === 0 ? 1 : 0);
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

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

const SELF_CHECK_REVIEW = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'portcullis-readiness-self-check',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: 'portcullis-self-check',
    name: 'self-check',
    operation: 'CREATE',
    userInfo: { username: 'system:portcullis:self-check' },
    object: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'self-check', namespace: 'portcullis-self-check' },
      spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
    },
  },
};

/**
 * Readiness runs a Pod CREATE through the same parse and judge steps as /validate and /mutate
 * (not audited: it is not the API server's request), so a replica whose RuleSet or admission path
 * throws stops getting traffic instead of answering the API server with 500s.
 */
function selfCheck(judge: Judge): string | undefined {
  try {
    const parsed = parseAdmissionReview(SELF_CHECK_REVIEW);
    if (!parsed.ok) return parsed.message;
    for (const answer of [validateReview, mutateReview]) {
      const { response } = answer(parsed.review, judge).review;
      if (response.uid !== SELF_CHECK_REVIEW.request.uid) return 'the answer does not echo the uid';
    }
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The uid of a review too broken to parse, when it has one, so its audit event can still cite it. */
function uidOf(body: unknown): string | undefined {
  const request = isObject(body) ? body['request'] : undefined;
  const uid = isObject(request) ? request['uid'] : undefined;
  return typeof uid === 'string' && uid !== '' ? uid : undefined;
}
