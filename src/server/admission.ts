// From a parsed AdmissionReview to the AdmissionReview answered, through the core. No transport
// here: the routes in server.ts only parse, time, audit and send what these functions return.

import type { AdmissionReview } from '../admission/review.js';
import { addSessionAnnotations } from '../audit/event.js';
import { judgeRulesConfigMap, RULES_CONFIGMAP_RULE } from '../config/rules-configmap-admission.js';
import type { ConfigMapRef } from '../config/rules-configmap.js';
import type { LoadedRuleSet } from '../config/ruleset-source.js';
import {
  denyMessage,
  evaluate,
  exceptionsApplied,
  mutate,
  outcome,
  warnings,
  type AdmissionRequest,
  type Decision,
  type DenyReason,
  type EvaluationContext,
} from '../core/index.js';

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
  patchType?: 'JSONPatch';
  patch?: string;
  auditAnnotations: Record<string, string>;
}

export interface AdmissionReviewAnswer {
  apiVersion: AdmissionReview['apiVersion'];
  kind: AdmissionReview['kind'];
  response: AdmissionResponse;
}

/** The answer, and what the audit event and metrics record about it. */
export interface Answer {
  review: AdmissionReviewAnswer;
  code: 200 | 403;
  message: string | undefined;
  decision: string;
  /** `rule=action` for each rule with something to say, in rule order: `no-privileged=deny,foo=warn`. */
  rules: { rule: string; action: string }[];
  /** `name=expires,…` of the exceptions that let something through; empty when none did. */
  exceptions: string;
  /** Exceptions that matched but were not in force (expired, or not yet granted). */
  lapsed: string[];
}

/**
 * Keys without a prefix: the API server prefixes each with the webhook's name
 * (`validate.portcullis.io/decision`) and drops a key that already has one.
 */
export const RESPONSE_ANNOTATIONS = {
  decision: 'decision',
  rules: 'rules',
  rulesetHash: 'ruleset-hash',
  exceptions: 'exceptions',
} as const;

/** What an answer is judged against: the RuleSet in force (none before the first good one loads). */
export interface Judge {
  loaded: LoadedRuleSet | undefined;
  /** `serve --rules-configmap`: edits of that ConfigMap are judged by the RuleSet they carry. */
  rulesConfigMap?: ConfigMapRef | undefined;
  /** Namespace objects by name (serve's watch), for `cel` rules' namespaceObject and namespaceSelector. */
  namespaces?: ReadonlyMap<string, unknown> | undefined;
  /** Facts for the checks: from the cluster (the ClusterRoles `serve` watches), and gathered for this request (the pod a CONNECT goes into). */
  context?: EvaluationContext | undefined;
}

/** Fails closed: without a RuleSet nothing is known to be safe, so only the fix itself gets in. */
export const NO_RULESET_MESSAGE =
  'Portcullis has no valid RuleSet loaded yet and refuses every request until one loads (see its log)';

function decide(request: AdmissionRequest, judge: Judge): Decision {
  const own = judge.rulesConfigMap && judgeRulesConfigMap(request, judge.rulesConfigMap);
  if (own !== undefined) return own;
  if (judge.loaded === undefined) {
    return {
      allowed: false,
      violations: [
        {
          rule: RULES_CONFIGMAP_RULE,
          check: 'ruleset',
          action: 'deny',
          message: NO_RULESET_MESSAGE,
          path: [],
        },
      ],
      rulesApplied: [],
    };
  }
  // Built by assignment, not spreads: see admissionEvent in src/audit/event.ts (once per request).
  const context: EvaluationContext = { now: new Date() };
  if (judge.namespaces !== undefined) context.namespaces = judge.namespaces;
  if (judge.context !== undefined) Object.assign(context, judge.context);
  return evaluate(request, judge.loaded.ruleset, context);
}

export function validateReview(review: AdmissionReview, judge: Judge): Answer {
  const decision = decide(review.request, judge);
  const rules = ruleActions(decision);
  const verdict = outcome(decision);
  const message = denyMessage(decision);
  const warned = warnings(decision);
  const exceptions = exceptionsApplied(decision)
    .map((e) => `${e.name}=${e.expires}`)
    .join(',');
  // The rules' own annotations first, then ours, as a spread of both would order them; built by
  // assignment, not spreads (see admissionEvent in src/audit/event.ts): this runs per request.
  const auditAnnotations: Record<string, string> =
    decision.auditAnnotations === undefined ? {} : Object.assign({}, decision.auditAnnotations);
  addAnnotations(auditAnnotations, verdict, rules, judge.loaded?.hash);
  if (exceptions !== '') auditAnnotations[RESPONSE_ANNOTATIONS.exceptions] = exceptions;
  const response: AdmissionResponse = {
    uid: review.request.uid,
    allowed: decision.allowed,
    auditAnnotations,
  };
  if (message !== undefined) {
    const { code, reason } = denyStatus(decision);
    response.status = reason === undefined ? { code, message } : { code, reason, message };
  }
  if (warned.length > 0) response.warnings = warned;
  // The API server's own audit event for an exec then names the command too, beside its verb (get
  // for WebSocket, create for SPDY), which the webhook request does not carry.
  addSessionAnnotations(response.auditAnnotations, review.request, '');
  return {
    review: { apiVersion: review.apiVersion, kind: review.kind, response },
    code: decision.allowed ? 200 : 403,
    message,
    decision: verdict,
    rules,
    exceptions,
    lapsed: (decision.lapsedExceptions ?? []).map((e) => e.name),
  };
}

/** Patches only, and always allows: judging is /validate's job, which sees the patched object. */
export function mutateReview(review: AdmissionReview, judge: Judge): Answer {
  const { loaded } = judge;
  const mutation = loaded === undefined ? { patch: [], rules: [] } : mutate(review.request, loaded.ruleset);
  const rules = mutation.rules.map((rule) => ({ rule, action: 'mutate' }));
  const response: AdmissionResponse = {
    uid: review.request.uid,
    allowed: true,
    ...(mutation.patch.length === 0
      ? {}
      : { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(mutation.patch)).toString('base64') }),
    auditAnnotations: annotations('allow', rules, loaded?.hash),
  };
  return {
    review: { apiVersion: review.apiVersion, kind: review.kind, response },
    code: 200,
    message: undefined,
    decision: 'allow',
    rules,
    exceptions: '',
    lapsed: [],
  };
}

const STATUS_CODES: Readonly<Record<DenyReason, number>> = {
  Unauthorized: 401,
  Forbidden: 403,
  Invalid: 422,
  RequestEntityTooLarge: 413,
};

/** The first denying violation's reason (a `cel` validation's), as a VAP answers; else a plain 403. */
function denyStatus(decision: Decision): { code: number; reason?: DenyReason } {
  const reason = decision.violations.find((v) => v.action === 'deny')?.reason;
  return reason === undefined ? { code: 403 } : { code: STATUS_CODES[reason], reason };
}

export function formatRules(rules: readonly { rule: string; action: string }[]): string {
  return rules.map(({ rule, action }) => `${rule}=${action}`).join(',');
}

/** Each violated rule once, in rule order, however many containers it found. */
function ruleActions(decision: Decision): { rule: string; action: string }[] {
  const seen = new Set<string>();
  const rules: { rule: string; action: string }[] = [];
  for (const v of decision.violations) {
    if (seen.has(v.rule)) continue;
    seen.add(v.rule);
    rules.push({ rule: v.rule, action: v.exception === undefined ? v.action : 'excepted' });
  }
  return rules;
}

function annotations(
  decision: string,
  rules: readonly { rule: string; action: string }[],
  hash: string | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  addAnnotations(out, decision, rules, hash);
  return out;
}

function addAnnotations(
  out: Record<string, string>,
  decision: string,
  rules: readonly { rule: string; action: string }[],
  hash: string | undefined,
): void {
  out[RESPONSE_ANNOTATIONS.decision] = decision;
  if (hash !== undefined) out[RESPONSE_ANNOTATIONS.rulesetHash] = hash;
  if (rules.length > 0) out[RESPONSE_ANNOTATIONS.rules] = formatRules(rules);
}
