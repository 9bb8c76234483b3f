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
  return decision.violations
    .filter((v) => v.action === 'deny')
    .map(violationText)
    .join('; ');
}

/** What kubectl prints as `Warning: …`, one per violation of a `warn` rule. */
export function warnings(decision: Decision): string[] {
  return decision.violations.filter((v) => v.action === 'warn').map(violationText);
}

/** `deny`, `warn`, `audit`, `allow` or `skip`: the one-word outcome recorded in metrics and audit events. */
export function outcome(decision: Decision): 'deny' | 'warn' | 'audit' | 'allow' | 'skip' {
  if (!decision.allowed) return 'deny';
  if (decision.skipped !== undefined) return 'skip';
  if (decision.violations.some((v) => v.action === 'warn')) return 'warn';
  if (decision.violations.length > 0) return 'audit';
  return 'allow';
}
