/*
 * Check: allowPrivilegeEscalation
 *
 * Unless a container sets `allowPrivilegeEscalation: false`, the kernel lets its processes gain
 * more privileges than their parent (setuid binaries, file capabilities): a non-root process can
 * still become root. The Pod Security Standards' restricted control requires the explicit false.
 *
 * Fields read, in every init, regular and ephemeral container of the pod (or pod template):
 *   spec.containers[*].securityContext.allowPrivilegeEscalation
 *   spec.os.name
 * Allowed values: false (unset is denied: the runtime's default is true).
 * From v1.25 pods with `spec.os.name: windows` are not judged, as pod-security-admission: the
 * field means nothing on Windows and the API server refuses a Windows pod that sets it.
 * Versions: v1.0, v1.25.
 * Params: none.
 */

import { defineCheck, type Evaluator, type Finding } from '../check.js';
import { containerLabel, POD_TARGET, type PodView } from '../pod.js';
import { optBoolean, optObject } from '../read.js';

function compile(exemptWindows: boolean): Evaluator<PodView> {
  return (pod) => {
    if (exemptWindows && pod.os === 'windows') return [];
    const findings: Finding[] = [];
    for (const c of pod.containers) {
      const scPath = [...c.path, 'securityContext'];
      const sc = optObject(c.raw, 'securityContext', c.path);
      const value = sc === undefined ? undefined : optBoolean(sc, 'allowPrivilegeEscalation', scPath);
      if (value === false) continue;
      findings.push({
        path: [...scPath, 'allowPrivilegeEscalation'],
        message: `${containerLabel(c)}: securityContext.allowPrivilegeEscalation must be ${value === undefined ? 'set to false' : 'false, not true'}`,
      });
    }
    return findings;
  };
}

export const allowPrivilegeEscalation = defineCheck<Record<string, never>, PodView>({
  id: 'allowPrivilegeEscalation',
  target: POD_TARGET,
  summary: 'Every container must set securityContext.allowPrivilegeEscalation: false.',
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  versions: [
    { minimumVersion: 'v1.0', compile: () => compile(false) },
    // pod-security-admission's allowPrivilegeEscalation_1_25: Windows pods cannot set the field.
    { minimumVersion: 'v1.25', compile: () => compile(true) },
  ],
});
