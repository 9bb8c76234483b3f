// mutate(request, ruleset) -> JSON Patch. Pure, like evaluate. For each in-scope seccomp rule with
// `params.mutate` (the default), a pod whose containers would end up with no seccomp profile gets
// RuntimeDefault at pod level. An explicit profile, even Unconfined, is never overwritten:
// validation denies that one with a message the author can act on.

import { seccomp, containersWithoutProfile, type SeccompParams } from './checks/seccomp.js';
import { skipReason, sameJudgedPart } from './evaluate.js';
import { toJsonPointer } from './fieldpath.js';
import { isObject } from './read.js';
import { podSpecPath, readPod } from './pod.js';
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

/** Compiled seccomp params always carry `mutate` (the schema fills its default). */
function wantsMutation(params: unknown): boolean {
  const key: keyof SeccompParams = 'mutate';
  return isObject(params) && params[key] !== false;
}

export function mutate(request: AdmissionRequest, ruleset: CompiledRuleSet): Mutation {
  // Subresource writes cannot change the pod spec, so there is nothing to patch there.
  if ((request.subResource ?? '') !== '' || skipReason(request, ruleset) !== undefined) return NO_MUTATION;
  const specPath = podSpecPath(request.kind.group, request.kind.kind);
  if (specPath === undefined) return NO_MUTATION;
  // A running pod's securityContext is immutable: patching it on UPDATE would make the API server
  // refuse a harmless relabel.
  if (request.kind.kind === 'Pod' && request.operation !== 'CREATE') return NO_MUTATION;

  const namespace = request.namespace ?? '';
  const rules = ruleset.rules
    .filter((r) => r.check === seccomp.id && r.inScope(namespace) && wantsMutation(r.compiled.params))
    .map((r) => r.name);
  if (rules.length === 0) return NO_MUTATION;

  // A malformed object gets no patch; validation denies it with the reason.
  const pod = readPod(request.object, specPath);
  if (!pod.ok || containersWithoutProfile(pod.value).length === 0) return NO_MUTATION;
  // A template update that leaves the pod spec as it was must not start a rollout of its own.
  if (request.operation === 'UPDATE' && request.oldObject !== undefined) {
    const previous = readPod(request.oldObject, specPath);
    if (previous.ok && sameJudgedPart(previous.value, pod.value)) return NO_MUTATION;
  }

  const runtimeDefault = { type: 'RuntimeDefault' };
  const patch: PatchOperation = podHasSecurityContext(request.object, specPath)
    ? {
        op: 'add',
        path: toJsonPointer([...specPath, 'securityContext', 'seccompProfile']),
        value: runtimeDefault,
      }
    : {
        op: 'add',
        path: toJsonPointer([...specPath, 'securityContext']),
        value: { seccompProfile: runtimeDefault },
      };
  return { patch: [patch], rules };
}

/** Whether the pod spec has a securityContext object to add into (JSON Patch needs the parent). */
function podHasSecurityContext(object: unknown, specPath: readonly string[]): boolean {
  let node: unknown = object;
  for (const key of specPath) node = isObject(node) ? node[key] : undefined;
  return isObject(node) && isObject(node['securityContext']);
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
