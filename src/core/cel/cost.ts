// The runtime cost of one CEL expression, as the API server bounds it (its per-call limit). cel-js
// keeps no account of cost, so Portcullis counts what makes an expression expensive: every
// comprehension step costs the size of its body (nodes), and the Kubernetes functions written
// here cost the size of what they read. Evaluation is synchronous, so one meter is enough: it is
// reset before each expression runs and read by the counting hooks while it runs.

/** The API server's per-expression limit (k8s.io/apiserver celconfig.PerCallLimit). */
export const PER_CALL_COST_LIMIT = 1_000_000;

/** Thrown by the meter; the check turns it into the rule's failurePolicy. */
export class CostLimitExceeded extends Error {
  constructor() {
    super('operation cancelled: actual cost limit exceeded');
  }
}

let remaining = PER_CALL_COST_LIMIT;

/** Starts a fresh account for one expression. */
export function resetCost(limit: number = PER_CALL_COST_LIMIT): void {
  remaining = limit;
}

/** What the expression that ran last has left (for tests). */
export function remainingCost(): number {
  return remaining;
}

export function spendCost(units: number): void {
  remaining -= units;
  if (remaining < 0) throw new CostLimitExceeded();
}

/** Cost of reading a string or list: CEL charges by size, one unit per 10 characters or elements. */
export function sizeCost(size: number): void {
  spendCost(1 + Math.ceil(size / 10));
}
