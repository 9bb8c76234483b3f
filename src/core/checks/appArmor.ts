/*
 * Check: appArmor
 *
 * AppArmor confines what a container may touch even as root (mounts, /proc and /sys writes, raw
 * sockets). The runtime applies its default profile unless told otherwise; `Unconfined` turns it
 * off. The Pod Security Standards' baseline control, on both of its channels: the fields
 * (Kubernetes 1.30 and later) and the older beta annotations, which the kubelet still honours.
 *
 * Fields read:
 *   spec.securityContext.appArmorProfile.type
 *   spec.{initContainers,containers,ephemeralContainers}[*].securityContext.appArmorProfile.type
 *   metadata.annotations['container.apparmor.security.beta.kubernetes.io/*'] (of the pod, or of
 *   the pod template)
 * Allowed: the fields unset, RuntimeDefault or Localhost; the annotations empty,
 * `runtime/default` or `localhost/<profile>`. Anything else (Unconfined, unconfined, a typo) is
 * denied. Windows pods are judged too (the Standards exempt none).
 * pod-security-admission added the fields to its only version, v1.0, in place: every version
 * judges them, and so does this one.
 * Versions: v1.0.
 * Params: none.
 */

import { defineCheck, type Finding } from '../check.js';
import { containerLabel, POD_TARGET, type PodView } from '../pod.js';
import { optObject, optString, type JsonObject } from '../read.js';
import type { FieldPath } from '../types.js';

const ANNOTATION_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';
const ALLOWED_TYPES: ReadonlySet<string> = new Set(['RuntimeDefault', 'Localhost']);

function allowedAnnotation(value: string): boolean {
  return value === '' || value === 'runtime/default' || value.startsWith('localhost/');
}

/** The finding for one securityContext's appArmorProfile, if it sets a type that is not allowed. */
function profileFinding(label: string, parent: JsonObject, parentPath: FieldPath): Finding | undefined {
  const scPath = [...parentPath, 'securityContext'];
  const sc = optObject(parent, 'securityContext', parentPath);
  const profile = sc === undefined ? undefined : optObject(sc, 'appArmorProfile', scPath);
  if (profile === undefined) return undefined;
  const profilePath = [...scPath, 'appArmorProfile'];
  const type = optString(profile, 'type', profilePath);
  if (type !== undefined && ALLOWED_TYPES.has(type)) return undefined;
  return {
    path: [...profilePath, 'type'],
    message: `${label}: securityContext.appArmorProfile.type must be ${type === undefined ? 'set to RuntimeDefault or Localhost' : `RuntimeDefault or Localhost, not ${JSON.stringify(type)}`}`,
  };
}

export const appArmor = defineCheck<Record<string, never>, PodView>({
  id: 'appArmor',
  target: POD_TARGET,
  summary: 'No container may run without AppArmor: no Unconfined profile, in the fields or the annotations.',
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: () => (pod) => {
        const findings: Finding[] = [];
        const setters = [
          { label: 'pod', parent: pod.spec, path: pod.path },
          ...pod.containers.map((c) => ({ label: containerLabel(c), parent: c.raw, path: c.path })),
        ];
        for (const setter of setters) {
          const finding = profileFinding(setter.label, setter.parent, setter.path);
          if (finding !== undefined) findings.push(finding);
        }
        const keys = Object.keys(pod.annotations)
          .filter((key) => key.startsWith(ANNOTATION_PREFIX))
          .sort();
        for (const key of keys) {
          const value = pod.annotations[key] ?? '';
          if (allowedAnnotation(value)) continue;
          findings.push({
            path: [...pod.annotationsPath, key],
            message: `pod: annotation ${key} must be runtime/default or localhost/<profile>, not ${JSON.stringify(value)}`,
          });
        }
        return findings;
      },
    },
  ],
});
