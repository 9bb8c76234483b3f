// GET /healthz and /readyz as a fastify plugin. Readiness is more than "the process answers": a
// valid RuleSet, an unexpired serving certificate, in a cluster the ClusterRoles listed, and a Pod
// CREATE that goes through the same parse and judge steps as /validate and /mutate without throwing.

import type { FastifyPluginCallback } from 'fastify';
import { parseAdmissionReview } from '../admission/review.js';
import type { ClusterRolesWatch } from '../config/cluster-roles-watch.js';
import type { ConfigMapRef } from '../config/rules-configmap.js';
import type { EvaluationContext } from '../core/index.js';
import { mutateReview, validateReview, type Judge } from './admission.js';
import type { ServingCertificate } from './certificates.js';
import type { RuleSetHolder } from './ruleset-holder.js';

export interface ProbesOptions {
  rules: RuleSetHolder;
  rulesConfigMap: ConfigMapRef | undefined;
  /** `serve` in a cluster: the watched ClusterRoles; not ready until they are listed. */
  clusterRoles: ClusterRolesWatch | undefined;
  /** What the self-check is judged with, as every request is. */
  context: EvaluationContext;
  /** The pair new connections get (it changes on rotation). */
  certificate: () => ServingCertificate;
  closing: () => boolean;
  /** Epoch milliseconds: when the certificate counts as expired. */
  clock: () => number;
}

export const probes: FastifyPluginCallback<ProbesOptions> = (app, options, done) => {
  const { rules } = options;
  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/readyz', (_request, reply) => {
    const reasons = notReadyReasons(options);
    const certificate = options.certificate();
    const body = {
      status: reasons.length === 0 ? 'ready' : 'not ready',
      reasons,
      ruleset: rules.current?.hash ?? null,
      certificate: { serialNumber: certificate.serialNumber, notAfter: certificate.notAfter.toISOString() },
    };
    return reply.code(reasons.length === 0 ? 200 : 503).send(body);
  });
  done();
};

/** Why /readyz would answer 503; empty when ready. Also what `portcullis_ready` reports. */
export function notReadyReasons(options: ProbesOptions): string[] {
  const { rules } = options;
  const reasons: string[] = [];
  if (options.closing()) reasons.push('shutting down');
  if (rules.current === undefined) reasons.push('no valid RuleSet loaded');
  const roles = options.clusterRoles?.notReady();
  if (roles !== undefined) reasons.push(roles);
  else {
    const failure = selfCheck({
      loaded: rules.current,
      rulesConfigMap: options.rulesConfigMap,
      context: options.context,
    });
    if (failure !== undefined) reasons.push(`admission self-check failed: ${failure}`);
  }
  if (options.certificate().notAfter.getTime() <= options.clock())
    reasons.push('serving certificate has expired');
  return reasons;
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
    if (!parsed.ok) return parsed.error;
    for (const answer of [validateReview, mutateReview]) {
      const { response } = answer(parsed.review, judge).review;
      if (response.uid !== SELF_CHECK_REVIEW.request.uid) return 'the answer does not echo the uid';
    }
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
