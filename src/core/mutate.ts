// mutate(request, ruleset) -> JSON Patch. Pure, like evaluate. Each in-scope rule whose check
// declares a mutation (seccomp's RuntimeDefault today) adds its operations, in rule order, each
// computed on the object as the earlier ones left it. A check's patch only adds what is missing:
// validation denies an explicit bad value with a message the author can act on.

import { rulesFor, skipReason } from './evaluate.js';
import { isObject } from './read.js';
import type { CompiledRuleSet } from './ruleset.js';
import type { AdmissionRequest } from './types.js';

export interface PatchOperation {
  op: 'add';
  path: string;
  value: unknown;
}

export interface Mutation {
  patch: PatchOperation[];
  /** The rules that asked for the patch. */
  rules: string[];
}

const NO_MUTATION: Mutation = { patch: [], rules: [] };

export function mutate(request: AdmissionRequest, ruleset: CompiledRuleSet): Mutation {
  if (skipReason(request, ruleset) !== undefined) return NO_MUTATION;
  const rules = rulesFor(request, ruleset).filter(
    (rule) =>
      rule.compiled.mutate !== undefined &&
      rule.compiled.target.mutable(request) &&
      // A template update that leaves the pod spec as it was must not start a rollout of its own.
      !rule.compiled.target.unchanged(request),
  );
  if (rules.length === 0) return NO_MUTATION;

  const patch: PatchOperation[] = [];
  const asked: string[] = [];
  let object: unknown = request.object;
  for (const rule of rules) {
    const result = rule.compiled.mutate?.(object, request);
    // A malformed object gets no patch; validation denies it with the reason.
    if (result === undefined || !result.ok) return NO_MUTATION;
    if (result.value.length === 0) continue;
    patch.push(...result.value);
    asked.push(rule.name);
    object = applyMutation(object, result.value);
  }
  return patch.length === 0 ? NO_MUTATION : { patch, rules: asked };
}

/**
 * The object as the API server stores it after applying `patch` (only `add` operations, whose
 * parents exist: what `mutate` emits). Lets the CLI judge what the validating webhook will see.
 */
export function applyMutation(object: unknown, patch: readonly PatchOperation[]): unknown {
  const result: unknown = structuredClone(object);
  for (const op of patch) {
    const keys = op.path
      .split('/')
      .slice(1)
      .map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = keys.pop();
    let parent: unknown = result;
    for (const key of keys) parent = isObject(parent) ? parent[key] : undefined;
    if (last === undefined || !isObject(parent))
      throw new Error(`patch path ${op.path} has no parent object`);
    Object.assign(parent, { [last]: op.value });
  }
  return result;
}
