/*
 * Check: seccomp
 *
 * Without a seccomp profile a container can make every system call the kernel has, which is how
 * most container escapes start. This is the Pod Security Standards' restricted rule.
 *
 * Fields read:
 *   spec.securityContext.seccompProfile.type
 *   spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seccompProfile.type
 *   spec.os.name
 * Allowed: every container ends up with RuntimeDefault or Localhost (its own setting, else the pod's).
 * Unconfined is denied wherever it is set, and so is any other type (a typo, the old annotation's
 * `runtime/default`). With `requireProfile: false` (the baseline level) only an explicit Unconfined
 * is denied. Pods with `spec.os.name: windows` are not checked: Windows has no
 * seccomp, and the kubelet refuses a pod whose os.name does not match its node.
 * Versions: v1.0.
 * Params: requireProfile (default true); mutate (default true): whether /mutate sets RuntimeDefault
 * at pod level for containers that would end up with no profile.
 */

import { defineCheck, type Finding } from '../check.js';
import { toJsonPointer } from '../fieldpath.js';
import type { PatchOperation } from '../mutate.js';
import { containerLabel, POD_TARGET, type PodView } from '../pod.js';

export interface SeccompParams {
  requireProfile: boolean;
  mutate: boolean;
}

const UNCONFINED = 'Unconfined';
const CONFINING: ReadonlySet<string> = new Set(['RuntimeDefault', 'Localhost']);

/** Why an explicitly set type is refused, or undefined when it is allowed. */
function refusal(type: string | undefined, requireProfile: boolean): string | undefined {
  if (type === undefined || CONFINING.has(type)) return undefined;
  if (type === UNCONFINED) return 'must not be Unconfined';
  return requireProfile ? `must be RuntimeDefault or Localhost, not ${JSON.stringify(type)}` : undefined;
}

/** Containers that end up with no seccomp profile at all: neither their own nor the pod's. */
export function containersWithoutProfile(pod: PodView): PodView['containers'] {
  if (pod.os === 'windows' || pod.securityContext.seccompProfileType !== undefined) return [];
  return pod.containers.filter((c) => c.securityContext.seccompProfileType === undefined);
}

/** RuntimeDefault at pod level, for a pod some of whose containers would otherwise have no profile. */
function runtimeDefaultPatch(pod: PodView): PatchOperation[] {
  if (containersWithoutProfile(pod).length === 0) return [];
  const runtimeDefault = { type: 'RuntimeDefault' };
  // JSON Patch adds into an existing parent only: add the whole securityContext when there is none.
  return pod.hasSecurityContext
    ? [
        {
          op: 'add',
          path: toJsonPointer([...pod.path, 'securityContext', 'seccompProfile']),
          value: runtimeDefault,
        },
      ]
    : [
        {
          op: 'add',
          path: toJsonPointer([...pod.path, 'securityContext']),
          value: { seccompProfile: runtimeDefault },
        },
      ];
}

/**
 * `containersWithoutProfile(pod).length > 0` in the API server's CEL, over the pod spec at `spec`:
 * the mutating webhook is called only for pods that could get RuntimeDefault. test/core/checks/
 * seccomp-condition.test.ts evaluates both over the same table.
 */
function couldLackProfile(spec: string): string {
  const hasType = (x: string): string =>
    `(has(${x}.securityContext) && has(${x}.securityContext.seccompProfile) && has(${x}.securityContext.seccompProfile.type))`;
  const containers = ['initContainers', 'containers', 'ephemeralContainers']
    .map((list) => `(has(${spec}.${list}) ? ${spec}.${list} : [])`)
    .join(' + ');
  return (
    `!(has(${spec}.os) && has(${spec}.os.name) && ${spec}.os.name == 'windows') && !${hasType(spec)} && ` +
    `(${containers}).exists(c, !${hasType('c')})`
  );
}

export const seccomp = defineCheck<SeccompParams, PodView>({
  id: 'seccomp',
  target: POD_TARGET,
  summary:
    'Every container must run with the RuntimeDefault or a Localhost seccomp profile; never Unconfined.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      requireProfile: { type: 'boolean', default: true },
      mutate: { type: 'boolean', default: true },
    },
  },
  mutation: { enabled: (params) => params.mutate, patch: runtimeDefaultPatch, callWhen: couldLackProfile },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: (params) => (pod) => {
        if (pod.os === 'windows') return [];
        const findings: Finding[] = [];
        const podPath = [...pod.path, 'securityContext', 'seccompProfile', 'type'];
        const podRefusal = refusal(pod.securityContext.seccompProfileType, params.requireProfile);
        if (podRefusal !== undefined) {
          findings.push({ path: podPath, message: `pod: securityContext.seccompProfile.type ${podRefusal}` });
        }
        for (const c of pod.containers) {
          const containerRefusal = refusal(c.securityContext.seccompProfileType, params.requireProfile);
          if (containerRefusal !== undefined) {
            findings.push({
              path: [...c.path, 'securityContext', 'seccompProfile', 'type'],
              message: `${containerLabel(c)}: securityContext.seccompProfile.type ${containerRefusal}`,
            });
          }
        }
        if (params.requireProfile) {
          const missing = containersWithoutProfile(pod);
          if (missing.length > 0) {
            const names = missing.map((c) => `"${c.name}"`).join(', ');
            findings.push({
              path: podPath,
              message: `pod or ${missing.length === 1 ? 'container' : 'containers'} ${names}: securityContext.seccompProfile.type must be set to RuntimeDefault or Localhost`,
            });
          }
        }
        return findings;
      },
    },
  ],
});
