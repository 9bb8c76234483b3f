/*
 * Check: runAsUser
 *
 * `runAsUser: 0` runs the container as root whatever its image says, and it is how a pod gets
 * around a `runAsNonRoot` that the image's own USER would have satisfied. The Pod Security
 * Standards' restricted control.
 *
 * Fields read:
 *   spec.securityContext.runAsUser
 *   spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsUser
 *   spec.hostUsers
 * Allowed values: unset, or any UID but 0, at pod and container level. Windows pods are judged
 * too (the Standards exempt none).
 * From v1.35 a pod with `hostUsers: false` is not judged, as pod-security-admission: in its own
 * user namespace, UID 0 in the container is an unprivileged user on the node.
 * Versions: v1.0, v1.35.
 * Params: none.
 */

import { defineCheck, type Evaluator, type Finding } from '../check.js';
import { containerLabel, inUserNamespace, POD_TARGET, type PodView } from '../pod.js';
import { optInteger, optObject } from '../read.js';

function compile(relaxForUserNamespaces: boolean): Evaluator<PodView> {
  return (pod) => {
    if (relaxForUserNamespaces && inUserNamespace(pod)) return [];
    const findings: Finding[] = [];
    const setters = [
      { label: 'pod', parent: pod.spec, path: pod.path },
      ...pod.containers.map((c) => ({ label: containerLabel(c), parent: c.raw, path: c.path })),
    ];
    for (const setter of setters) {
      const scPath = [...setter.path, 'securityContext'];
      const sc = optObject(setter.parent, 'securityContext', setter.path);
      if (sc !== undefined && optInteger(sc, 'runAsUser', scPath) === 0) {
        findings.push({
          path: [...scPath, 'runAsUser'],
          message: `${setter.label}: securityContext.runAsUser must not be 0`,
        });
      }
    }
    return findings;
  };
}

export const runAsUser = defineCheck<Record<string, never>, PodView>({
  id: 'runAsUser',
  target: POD_TARGET,
  summary: 'No container may run as UID 0: runAsUser must not be 0 at pod or container level.',
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  versions: [
    { minimumVersion: 'v1.0', compile: () => compile(false) },
    // pod-security-admission's runAsUser1_35: user-namespaced pods are relaxed.
    { minimumVersion: 'v1.35', compile: () => compile(true) },
  ],
});
