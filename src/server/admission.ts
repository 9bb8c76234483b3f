// From a parsed AdmissionReview to the AdmissionReview answered, through the core. No transport
// here: the routes in server.ts only parse, time, audit and send what these functions return.

import type { AdmissionReview } from '../admission/review.js';
import type { LoadedRuleSet } from '../config/ruleset-source.js';
import { denyMessage, evaluate, mutate, outcome, warnings, type Decision } from '../core/index.js';

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string };
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
}

/**
 * Keys without a prefix: the API server prefixes each with the webhook's name
 * (`validate.portcullis.io/decision`) and drops a key that already has one.
 */
export const RESPONSE_ANNOTATIONS = {
  decision: 'decision',
  rules: 'rules',
  rulesetHash: 'ruleset-hash',
} as const;

export function validateReview(review: AdmissionReview, loaded: LoadedRuleSet): Answer {
  const decision = evaluate(review.request, loaded.ruleset);
  const rules = ruleActions(decision);
  const verdict = outcome(decision);
  const message = denyMessage(decision);
  const warned = warnings(decision);
  const response: AdmissionResponse = {
    uid: review.request.uid,
    allowed: decision.allowed,
    ...(message === undefined ? {} : { status: { code: 403, message } }),
    ...(warned.length === 0 ? {} : { warnings: warned }),
    auditAnnotations: annotations(verdict, rules, loaded.hash),
  };
  return {
    review: { apiVersion: review.apiVersion, kind: review.kind, response },
    code: decision.allowed ? 200 : 403,
    message,
    decision: verdict,
    rules,
  };
}

/** Patches only, and always allows: judging is /validate's job, which sees the patched object. */
export function mutateReview(review: AdmissionReview, loaded: LoadedRuleSet): Answer {
  const mutation = mutate(review.request, loaded.ruleset);
  const rules = mutation.rules.map((rule) => ({ rule, action: 'mutate' }));
  const response: AdmissionResponse = {
    uid: review.request.uid,
    allowed: true,
    ...(mutation.patch.length === 0
      ? {}
      : { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(mutation.patch)).toString('base64') }),
    auditAnnotations: annotations('allow', rules, loaded.hash),
  };
  return {
    review: { apiVersion: review.apiVersion, kind: review.kind, response },
    code: 200,
    message: undefined,
    decision: 'allow',
    rules,
  };
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
    rules.push({ rule: v.rule, action: v.action });
  }
  return rules;
}

function annotations(
  decision: string,
  rules: readonly { rule: string; action: string }[],
  hash: string,
): Record<string, string> {
  const out: Record<string, string> = {
    [RESPONSE_ANNOTATIONS.decision]: decision,
    [RESPONSE_ANNOTATIONS.rulesetHash]: hash,
  };
  if (rules.length > 0) out[RESPONSE_ANNOTATIONS.rules] = formatRules(rules);
  return out;
}
