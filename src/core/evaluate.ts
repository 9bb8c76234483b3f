// evaluate(request, ruleset) -> decision. The one judgement path: the webhook, the CLI and the
// ConfigMap self-check all call this, so they cannot disagree. No I/O, no clock, no logging.

import type { Finding } from './check.js';
import { isBindingKind, readBinding } from './rbac.js';
import { podSpecPath, readPod } from './pod.js';
import type { Malformed } from './read.js';
import type { CompiledRule, CompiledRuleSet } from './ruleset.js';
import type { AdmissionRequest, Decision, SkipReason, Violation } from './types.js';

/** `kubectl debug` adds containers through this subresource: it is judged like the pod itself. */
const JUDGED_SUBRESOURCES: ReadonlySet<string> = new Set(['pods/ephemeralcontainers']);

type Read<V> = (object: unknown) => { ok: true; value: V } | { ok: false; error: Malformed };
type Evaluator<V> = (view: V) => Finding[];

function skip(reason: SkipReason): Decision {
  return { allowed: true, violations: [], skipped: reason, rulesApplied: [] };
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

/**
 * The checks every request passes before any rule: operations and subresources that are not judged,
 * then exemptions. Shared with `mutate`, so both skip the same requests.
 */
export function skipReason(request: AdmissionRequest, ruleset: CompiledRuleSet): SkipReason | undefined {
  if (request.operation === 'DELETE' || request.operation === 'CONNECT') {
    return { kind: 'operation', detail: `${request.operation} is not judged` };
  }
  const subresource = request.subResource ?? '';
  if (subresource !== '' && !JUDGED_SUBRESOURCES.has(`${request.resource.resource}/${subresource}`)) {
    return { kind: 'subresource', detail: `subresource "${subresource}" is not judged` };
  }
  const exempt = exemption(request, ruleset);
  return exempt === undefined ? undefined : { kind: 'exempt', detail: exempt };
}

export function evaluate(request: AdmissionRequest, ruleset: CompiledRuleSet): Decision {
  const skipped = skipReason(request, ruleset);
  if (skipped !== undefined) return skip(skipped);

  const namespace = request.namespace ?? '';
  const inScope = (rule: CompiledRule): boolean => rule.inScope(namespace);
  const { group, kind } = request.kind;
  const specPath = podSpecPath(group, kind);
  if (specPath !== undefined) {
    const rules = ruleset.rules
      .filter(inScope)
      .flatMap((rule) =>
        rule.compiled.target === 'pod' ? [{ rule, evaluate: rule.compiled.evaluate }] : [],
      );
    return judge(request, rules, (object) => readPod(object, specPath));
  }
  if (isBindingKind(group, kind)) {
    const rules = ruleset.rules
      .filter(inScope)
      .flatMap((rule) =>
        rule.compiled.target === 'binding' ? [{ rule, evaluate: rule.compiled.evaluate }] : [],
      );
    return judge(request, rules, (object) => readBinding(object, kind, namespace));
  }
  return { allowed: true, violations: [], rulesApplied: [] };
}

function judge<V>(
  request: AdmissionRequest,
  rules: readonly { rule: CompiledRule; evaluate: Evaluator<V> }[],
  read: Read<V>,
): Decision {
  if (rules.length === 0) return { allowed: true, violations: [], rulesApplied: [] };
  const rulesApplied = rules.map(({ rule }) => rule.name);

  const current = read(request.object);
  if (!current.ok) return { allowed: false, violations: [], malformed: current.error, rulesApplied };

  // An UPDATE that leaves the judged part as it was (a label, a finalizer, a status write) is not
  // judged again, as pod-security-admission does: otherwise tightening a rule would stop existing
  // objects from ever being relabelled or deleted through their finalizers.
  if (request.operation === 'UPDATE' && request.oldObject !== undefined) {
    const previous = read(request.oldObject);
    if (previous.ok && sameJudgedPart(previous.value, current.value)) {
      return {
        ...skip({ kind: 'unchanged', detail: 'the update does not change what the rules judge' }),
        rulesApplied,
      };
    }
  }

  const violations: Violation[] = [];
  for (const { rule, evaluate } of rules) {
    for (const finding of evaluate(current.value)) {
      violations.push({ rule: rule.name, check: rule.check, action: rule.action, ...finding });
    }
  }
  return { allowed: !violations.some((v) => v.action === 'deny'), violations, rulesApplied };
}

/** Deep equality of the views the checks read (paths included, so a reorder counts as a change). */
export function sameJudgedPart(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const entriesA: [string, unknown][] = Object.entries(a);
  const entriesB = new Map<string, unknown>(Object.entries(b));
  return (
    entriesA.length === entriesB.size &&
    entriesA.every(([k, v]) => entriesB.has(k) && sameJudgedPart(v, entriesB.get(k)))
  );
}
