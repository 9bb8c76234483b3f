// POST /validate and /mutate as one fastify plugin: authenticate the caller (with --client-ca),
// read the body within its bounds, parse the review, judge it through admission.ts, audit, count
// and answer. Everything refused on the way — an unauthenticated caller, a body too large or too
// slow, a review that does not parse — is still answered with a metav1.Status and recorded as one
// audit event, so no answer ever leaves without its event.

import { randomUUID } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import type { FastifyError, FastifyPluginCallback, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { parseAdmissionReview, type AdmissionReview } from '../admission/review.js';
import {
  admissionEvent,
  rejectedEvent,
  type AuditEvent,
  type Endpoint,
  type RequestFacts,
} from '../audit/event.js';
import type { AuditSink } from '../audit/sink.js';
import type { ConfigMapRef } from '../config/rules-configmap.js';
import { isObject, wantsConnectPod, type EvaluationContext } from '../core/index.js';
import {
  formatRules,
  mutateReview,
  validateReview,
  type AdmissionReviewAnswer,
  type Answer,
  type Judge,
} from './admission.js';
import { readJsonBody, type BodyBudget, type BodyLimits } from './body.js';
import { checkClient, type ClientAuthOptions } from './client-auth.js';
import { RequestError } from './json-body.js';
import type { Metrics } from './metrics.js';
import type { PodLabelLookup } from './pod-lookup.js';
import type { RuleSetHolder } from './ruleset-holder.js';
import { status } from './status.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** clock() when the request arrived, for the audit event and the latency histogram. */
    receivedAt: number;
    /** The verified client certificate's name, with --client-ca. */
    client: string | undefined;
  }
}

export interface AdmissionRoutesOptions {
  rules: RuleSetHolder;
  rulesConfigMap: ConfigMapRef | undefined;
  /** Namespace objects by name (serve's watch), for `cel` rules. */
  namespaces: ReadonlyMap<string, unknown> | undefined;
  /** Facts every request is judged with (the watched ClusterRoles), updated in place. */
  context: EvaluationContext;
  /** Looks up the pod a CONNECT goes into when a rule needs its labels; without it they are unknown. */
  lookupPod: PodLabelLookup | undefined;
  audit: readonly AuditSink[];
  metrics: Metrics;
  /** For what an operator must hear about outside the audit trail (an exception that lapsed). */
  logger: Logger;
  /** Epoch milliseconds with a fraction: the audit timestamps and the latency histogram. */
  clock: () => number;
  body: BodyLimits;
  budget: BodyBudget;
  clientAuth: ClientAuthOptions | undefined;
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

/** Refusals after which the rest of the body is not wanted: the connection closes with the answer. */
const CLOSING_CODES: ReadonlySet<string> = new Set([
  'PORTCULLIS_ERR_BODY_TOO_LARGE',
  'PORTCULLIS_ERR_BODY_BUDGET',
  'PORTCULLIS_ERR_BODY_INCOMPLETE',
  'PORTCULLIS_ERR_NO_CLIENT_CERT',
  'PORTCULLIS_ERR_CLIENT_CERT_UNTRUSTED',
  'PORTCULLIS_ERR_CLIENT_NOT_ALLOWED',
]);

const MAX_CITED_UID_LENGTH = 128;

export const admissionRoutes: FastifyPluginCallback<AdmissionRoutesOptions> = (app, options, done) => {
  const { rules, metrics, logger, clock } = options;
  const audit = (event: AuditEvent): void => {
    for (const sink of options.audit) sink.write(event);
  };
  const facts = (request: FastifyRequest, endpoint: Endpoint): RequestFacts => ({
    endpoint,
    requestURI: request.url,
    sourceIP: request.ip,
    userAgent: request.headers['user-agent'],
    receivedAt: request.receivedAt,
    client: request.client,
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', (request, _payload, parsed) => {
    readJsonBody(request.raw, options.body, options.budget, parsed);
  });
  app.decorateRequest('receivedAt', 0);
  app.decorateRequest('client', undefined);

  app.addHook('onRequest', (request, _reply, next) => {
    request.receivedAt = clock();
    const { clientAuth } = options;
    if (clientAuth === undefined) {
      next();
      return;
    }
    const socket = request.raw.socket;
    const checked =
      socket instanceof TLSSocket
        ? checkClient(socket, clientAuth)
        : {
            ok: false as const,
            statusCode: 401 as const,
            code: 'PORTCULLIS_ERR_NO_CLIENT_CERT',
            message: 'not TLS',
          };
    if (!checked.ok) {
      next(new RequestError(checked.statusCode, checked.code, checked.message));
      return;
    }
    request.client = checked.client;
    next();
  });

  app.setErrorHandler((error: FastifyError | RequestError, request, reply) => {
    const code = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
    const message =
      code >= 500
        ? 'internal error'
        : error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? `content type ${JSON.stringify(request.headers['content-type'] ?? '')} is not accepted: send application/json`
          : error.message;
    if (code >= 500) request.log.error({ err: error }, 'admission request failed');
    const body = status(code, message);
    const endpoint = ENDPOINTS.get(request.routeOptions.url ?? '');
    if (endpoint !== undefined) {
      audit(
        rejectedEvent(
          facts(request, endpoint),
          uidOf(request.body) ?? randomUUID(),
          { code, reason: body.reason, message },
          rules.current,
          clock(),
        ),
      );
      // Server errors apart from refused input: a 5xx is Portcullis' fault, a 4xx the caller's.
      metrics.decisions.inc({ endpoint, decision: code >= 500 ? 'error' : 'invalid' });
    }
    if (CLOSING_CODES.has(error.code)) void reply.header('connection', 'close');
    return reply.code(code).send(body);
  });

  const route = (endpoint: Endpoint, answer: (review: AdmissionReview, judge: Judge) => Answer) => ({
    schema: { response: ANSWER_SCHEMA },
    handler: (request: FastifyRequest) => {
      const parsed = parseAdmissionReview(request.body);
      if (!parsed.ok) throw new RequestError(400, 'PORTCULLIS_ERR_INVALID_REVIEW', parsed.error);
      // Read once: a RuleSet swapped in meanwhile applies from the next request on.
      const loaded = rules.current;
      const respond = (extra?: EvaluationContext): AdmissionReviewAnswer => {
        const judge: Judge = {
          loaded,
          rulesConfigMap: options.rulesConfigMap,
          namespaces: options.namespaces,
          context: extra === undefined ? options.context : { ...options.context, ...extra },
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
  done();
};

/** The uid of a review too broken to parse, when it has a sane one, so its audit event can cite it. */
function uidOf(body: unknown): string | undefined {
  const request = isObject(body) ? body['request'] : undefined;
  const uid = isObject(request) ? request['uid'] : undefined;
  return typeof uid === 'string' && uid !== '' && uid.length <= MAX_CITED_UID_LENGTH ? uid : undefined;
}
