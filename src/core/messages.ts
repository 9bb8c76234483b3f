// The words users see. Messages are API: the webhook's deny message, kubectl's warnings, the CLI's
// table and the audit annotations are all built here, from the same decision.

import { formatFieldPath } from './fieldpath.js';
import type { Decision, Violation } from './types.js';

/**
 * An answer stays small whatever the object: a deny message cites at most this many violations
 * (and every violated rule at least once), kubectl gets at most this many warnings, and the rest
 * is counted ("and 240 more"). The API server itself truncates warnings past 256 characters.
 */
export const MAX_CITED_VIOLATIONS = 20;
/** Characters of one violation's text: an image string in a message can be as long as the object. */
export const MAX_VIOLATION_TEXT = 1024;

/** `container "app": securityContext.privileged must not be true [no-privileged]`. */
export function violationText(violation: Violation): string {
  const message =
    violation.message.length > MAX_VIOLATION_TEXT
      ? `${violation.message.slice(0, MAX_VIOLATION_TEXT)}…`
      : violation.message;
  return `${message} [${violation.rule}]`;
}

/**
 * The violations an answer cites, in their order: the first of each rule, then the next ones in
 * order up to MAX_CITED_VIOLATIONS (more only when more rules than that are violated).
 */
function cited(violations: readonly Violation[]): { shown: Violation[]; more: number } {
  if (violations.length <= MAX_CITED_VIOLATIONS) return { shown: [...violations], more: 0 };
  const keep = new Set<number>();
  const rules = new Set<string>();
  violations.forEach((v, i) => {
    if (!rules.has(v.rule)) {
      rules.add(v.rule);
      keep.add(i);
    }
  });
  for (let i = 0; i < violations.length && keep.size < MAX_CITED_VIOLATIONS; i++) keep.add(i);
  const shown = violations.filter((_, i) => keep.has(i));
  return { shown, more: violations.length - shown.length };
}

/** The reason a denied request is refused, citing each violated rule; undefined when allowed. */
export function denyMessage(decision: Decision): string | undefined {
  if (decision.malformed !== undefined) {
    const field = formatFieldPath(decision.malformed.path);
    return `object is malformed: ${field === '' ? 'object' : field} ${decision.malformed.message}`;
  }
  if (decision.allowed) return undefined;
  const { shown, more } = cited(
    decision.violations.filter((v) => v.action === 'deny' && v.exception === undefined),
  );
  const texts = shown.map(violationText);
  if (more > 0) texts.push(`and ${more} more`);
  return [...texts, ...lapsedTexts(decision)].join('; ');
}

/** `exception "legacy" expired at 2027-01-31T00:00:00.000Z and no longer applies`. */
function lapsedTexts(decision: Decision): string[] {
  return (decision.lapsedExceptions ?? []).map((e) =>
    e.state === 'expired'
      ? `exception "${e.name}" expired at ${e.expires} and no longer applies`
      : `exception "${e.name}" is not in force yet`,
  );
}

/**
 * What kubectl prints as `Warning: …`: each violation of a `warn` rule, each violation an exception
 * lets through (with the exception, its expiry and reason, so the owner sees it every time), and
 * exceptions that lapsed.
 */
export function warnings(decision: Decision): string[] {
  const { shown, more } = cited(
    decision.violations.filter((v) => v.exception !== undefined || v.action === 'warn'),
  );
  const out = shown.map((v) =>
    v.exception === undefined
      ? violationText(v)
      : `${violationText(v)} allowed by exception "${v.exception.name}" until ${v.exception.expires}: ${v.exception.reason}`,
  );
  if (more > 0) out.push(`and ${more} more warnings`);
  if (decision.allowed) out.push(...lapsedTexts(decision));
  return out;
}

/** `name=expiry` of each exception that let something through: the audit annotation's value. */
export function exceptionsApplied(decision: Decision): { name: string; expires: string }[] {
  const seen = new Map<string, string>();
  for (const v of decision.violations)
    if (v.exception !== undefined) seen.set(v.exception.name, v.exception.expires);
  return [...seen].map(([name, expires]) => ({ name, expires }));
}

/** `deny`, `warn`, `audit`, `allow` or `skip`: the one-word outcome recorded in metrics and audit events. */
export function outcome(decision: Decision): 'deny' | 'warn' | 'audit' | 'allow' | 'skip' {
  if (!decision.allowed) return 'deny';
  if (decision.skipped !== undefined) return 'skip';
  const standing = decision.violations.filter((v) => v.exception === undefined);
  if (standing.some((v) => v.action === 'warn')) return 'warn';
  if (standing.length > 0) return 'audit';
  return 'allow';
}
