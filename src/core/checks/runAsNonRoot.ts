/*
 * Check: runAsNonRoot
 *
 * With `runAsNonRoot: true` the kubelet refuses to start a container whose user is root (UID 0),
 * whatever its image says; root in a container is one kernel bug away from root on the node. The
 * Pod Security Standards' restricted control.
 *
 * Fields read:
 *   spec.securityContext.runAsNonRoot
 *   spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsNonRoot
 *   spec.hostUsers
 * Allowed: true at pod level, or true on every container (a container's own setting wins);
 * false is denied wherever it is set. Windows pods are judged too (the Standards exempt none).
 * From v1.35 a pod with `hostUsers: false` is not judged, as pod-security-admission: in its own
 * user namespace, root in the container is an unprivileged user on the node.
 * Versions: v1.0, v1.35.
 * Params: none.
 */

import { defineCheck, type Evaluator, type Finding } from '../check.js';
import { containerLabel, inUserNamespace, POD_TARGET, type PodView } from '../pod.js';
import { optBoolean, optObject } from '../read.js';

function compile(relaxForUserNamespaces: boolean): Evaluator<PodView> {
  return (pod) => {
    if (relaxForUserNamespaces && inUserNamespace(pod)) return [];
    const findings: Finding[] = [];
    const podScPath = [...pod.path, 'securityContext'];
    const podSc = optObject(pod.spec, 'securityContext', pod.path);
    const podValue = podSc === undefined ? undefined : optBoolean(podSc, 'runAsNonRoot', podScPath);
    if (podValue === false) {
      findings.push({
        path: [...podScPath, 'runAsNonRoot'],
        message: 'pod: securityContext.runAsNonRoot must not be false',
      });
    }
    const unset: string[] = [];
    for (const c of pod.containers) {
      const scPath = [...c.path, 'securityContext'];
      const sc = optObject(c.raw, 'securityContext', c.path);
      const value = sc === undefined ? undefined : optBoolean(sc, 'runAsNonRoot', scPath);
      if (value === false) {
        findings.push({
          path: [...scPath, 'runAsNonRoot'],
          message: `${containerLabel(c)}: securityContext.runAsNonRoot must not be false`,
        });
      } else if (value === undefined) {
        unset.push(c.name);
      }
    }
    // A pod-level false is already reported, and setting it to true fixes these containers too.
    if (podValue === undefined && unset.length > 0) {
      const names = unset.map((name) => JSON.stringify(name)).join(', ');
      findings.push({
        path: [...podScPath, 'runAsNonRoot'],
        message: `pod or ${unset.length === 1 ? 'container' : 'containers'} ${names}: securityContext.runAsNonRoot must be set to true`,
      });
    }
    return findings;
  };
}

export const runAsNonRoot = defineCheck<Record<string, never>, PodView>({
  id: 'runAsNonRoot',
  target: POD_TARGET,
  summary: 'Containers must run as non-root: runAsNonRoot: true at pod level or on every container.',
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  versions: [
    { minimumVersion: 'v1.0', compile: () => compile(false) },
    // pod-security-admission's runAsNonRoot1_35: user-namespaced pods are relaxed.
    { minimumVersion: 'v1.35', compile: () => compile(true) },
  ],
});
