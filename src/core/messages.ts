// The words users see. Messages are API: the webhook's deny message, kubectl's warnings, the CLI's
// table and the audit annotations are all built here, from the same decision.

import { formatFieldPath } from './fieldpath.js';
import type { Decision, Violation } from './types.js';

/** `container "app": securityContext.privileged must not be true [no-privileged]`. */
export function violationText(violation: Violation): string {
  return `${violation.message} [${violation.rule}]`;
}

/** The reason a denied request is refused, citing each violated rule; undefined when allowed. */
export function denyMessage(decision: Decision): string | undefined {
  if (decision.malformed !== undefined) {
    const field = formatFieldPath(decision.malformed.path);
    return `object is malformed: ${field === '' ? 'object' : field} ${decision.malformed.message}`;
  }
  if (decision.allowed) return undefined;
  const denied = decision.violations
    .filter((v) => v.action === 'deny' && v.exception === undefined)
    .map(violationText)
    .join('; ');
  return [denied, ...lapsedTexts(decision)].join('; ');
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
  const out: string[] = [];
  for (const v of decision.violations) {
    if (v.exception !== undefined) {
      out.push(
        `${violationText(v)} allowed by exception "${v.exception.name}" until ${v.exception.expires}: ${v.exception.reason}`,
      );
    } else if (v.action === 'warn') out.push(violationText(v));
  }
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
