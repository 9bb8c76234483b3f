// evaluate(request, ruleset) -> decision. The one judgement path: the webhook, the CLI and the
// ConfigMap self-check all call this, so they cannot disagree. No I/O, no clock, no logging.

import type { CheckInput } from './check.js';
import { matchesSubject, objectNameOf, stateAt } from './exceptions.js';
import { POD_TARGET } from './pod.js';
import type { Target } from './target.js';
import type { CompiledRule, CompiledRuleSet } from './ruleset.js';
import type { AdmissionRequest, Decision, EvaluationContext, SkipReason, Violation } from './types.js';

function skip(reason: SkipReason, rulesApplied: string[] = []): Decision {
  return { allowed: true, violations: [], skipped: reason, rulesApplied };
}

/** Why the request is exempt, or undefined. Exemptions are checked before any rule. */
function exemption(request: AdmissionRequest, ruleset: CompiledRuleSet): string | undefined {
  const namespace = request.namespace ?? '';
  if (namespace !== '' && ruleset.exemptions.namespace(namespace)) {
    return `namespace "${namespace}" matches exemptions.namespaces`;
  }
  const username = request.userInfo.username ?? '';
  if (username !== '' && ruleset.exemptions.username(username)) {
    return `user "${username}" matches exemptions.usernames`;
  }
  const group = (request.userInfo.groups ?? []).find((g) => ruleset.exemptions.group(g));
  if (group !== undefined) return `group "${group}" matches exemptions.groups`;
  return undefined;
}

/** The distinct targets of a RuleSet's rules, worked out once per RuleSet rather than per request. */
const targetsOf = new WeakMap<CompiledRuleSet, readonly Target<unknown>[]>();

function rulesetTargets(ruleset: CompiledRuleSet): readonly Target<unknown>[] {
  let targets = targetsOf.get(ruleset);
  if (targets === undefined) {
    targets = [...new Set(ruleset.rules.map((r) => r.compiled.target))];
    targetsOf.set(ruleset, targets);
  }
  return targets;
}

/**
 * The checks every request passes before any rule: operations and subresources that no rule's
 * target judges, then exemptions. Shared with `mutate`, so both skip the same requests.
 */
export function skipReason(request: AdmissionRequest, ruleset: CompiledRuleSet): SkipReason | undefined {
  const judged = rulesetTargets(ruleset);
  if (!judged.some((t) => t.operations.includes(request.operation))) {
    return { kind: 'operation', detail: `${request.operation} is not judged` };
  }
  const subresource = request.subResource ?? '';
  if (subresource !== '' && !judged.some((t) => t.accepts(request))) {
    return { kind: 'subresource', detail: `subresource "${subresource}" is not judged` };
  }
  const exempt = exemption(request, ruleset);
  return exempt === undefined ? undefined : { kind: 'exempt', detail: exempt };
}

/**
 * The rules that judge this request: in the namespace's scope, and of a target that reads it.
 * Each target is asked once per request, not once per rule: a pod target's answer builds a
 * `group/kind` key and looks it up, and the default RuleSet has a dozen pod rules.
 */
export function rulesFor(request: AdmissionRequest, ruleset: CompiledRuleSet): CompiledRule[] {
  const namespace = request.namespace ?? '';
  const accepted = new Map<Target<unknown>, boolean>();
  return ruleset.rules.filter((rule) => {
    if (!rule.inScope(namespace)) return false;
    const target = rule.compiled.target;
    let accepts = accepted.get(target);
    if (accepts === undefined) {
      accepts = target.accepts(request);
      accepted.set(target, accepts);
    }
    return accepts;
  });
}

export function evaluate(
  request: AdmissionRequest,
  ruleset: CompiledRuleSet,
  context: EvaluationContext = {},
): Decision {
  const skipped = skipReason(request, ruleset);
  if (skipped !== undefined) return skip(skipped);

  const rules = rulesFor(request, ruleset);
  if (rules.length === 0) return { allowed: true, violations: [], rulesApplied: [] };
  const rulesApplied = rules.map((rule) => rule.name);

  const judged = rules.filter((rule) => !rule.compiled.target.unchanged(request));
  if (judged.length === 0) {
    return skip(
      { kind: 'unchanged', detail: 'the update does not change what the rules judge' },
      rulesApplied,
    );
  }

  const violations: Violation[] = [];
  let auditAnnotations: Record<string, string> | undefined;
  // One input for every rule of the request (checks run one after the other and keep nothing):
  // `annotate` files under the rule running now.
  let running = '';
  const input: CheckInput = {
    request,
    context,
    annotate: (key, value) => {
      auditAnnotations ??= {};
      auditAnnotations[`${running}.${key}`] = value;
    },
  };
  for (const rule of judged) {
    running = rule.name;
    let result;
    try {
      result = rule.compiled.run(input);
    } catch (err) {
      // A check that throws is a bug in that check, not in the request: the rule fails closed with
      // the reason, and every other rule is still judged.
      violations.push({
        rule: rule.name,
        check: rule.check,
        action: 'deny',
        message: `check "${rule.check}" failed: ${err instanceof Error ? err.message : String(err)}`,
        path: [],
        error: true,
      });
      continue;
    }
    if (!result.ok) return { allowed: false, violations: [], malformed: result.error, rulesApplied };
    for (const { notice, ...finding } of result.value) {
      const action = notice === true && rule.action === 'deny' ? 'warn' : rule.action;
      violations.push({ rule: rule.name, check: rule.check, action, ...finding });
    }
  }
  const lapsed = applyExceptions(request, ruleset, violations, context.now);
  // Built by assignment, not with conditional spreads: on Node 20 an object literal with a spread
  // leaves V8's fast path (see admissionEvent in src/audit/event.ts), and this runs per request.
  const decision: Decision = {
    allowed: !violations.some((v) => v.action === 'deny' && v.exception === undefined),
    violations,
    rulesApplied,
  };
  if (lapsed.length > 0) decision.lapsedExceptions = lapsed;
  if (auditAnnotations !== undefined) decision.auditAnnotations = auditAnnotations;
  return decision;
}

/**
 * Marks each violation an exception in force lifts, and returns the matching exceptions that are
 * not in force at `now`. A violation of a failed check (`error`) is never lifted: an exception
 * answers for a known finding, not for a check that could not judge.
 */
function applyExceptions(
  request: AdmissionRequest,
  ruleset: CompiledRuleSet,
  violations: Violation[],
  now: Date | undefined,
): NonNullable<Decision['lapsedExceptions']> {
  if (ruleset.exceptions.length === 0 || violations.length === 0) return [];
  const subject = {
    namespace: request.namespace ?? '',
    name: objectNameOf(request.name, request.object),
    images: imagesOf(request),
  };
  const lapsed = new Map<string, NonNullable<Decision['lapsedExceptions']>[number]>();
  for (const violation of violations) {
    if (violation.error === true) continue;
    for (const exception of ruleset.exceptions) {
      if (!exception.rules.has(violation.rule) || !matchesSubject(exception, subject)) continue;
      const cited = {
        name: exception.name,
        reason: exception.reason,
        expires: exception.expires.toISOString(),
      };
      const state = now === undefined ? 'expired' : stateAt(exception, now);
      if (state === 'in-force') {
        violation.exception = cited;
        break;
      }
      lapsed.set(exception.name, { ...cited, state });
    }
  }
  // A lapsed exception that another exception outdid still lapsed: it is reported either way.
  return [...lapsed.values()];
}

/** The container images of a pod-carrying object, for exceptions that name images. */
function imagesOf(request: AdmissionRequest): readonly string[] | undefined {
  if (!POD_TARGET.accepts(request)) return undefined;
  const view = POD_TARGET.view(request);
  return view.ok ? view.value.containers.map((c) => c.image ?? '') : undefined;
}
