/*
 * Check: seLinux
 *
 * On SELinux nodes the container's type is what keeps it off the node's files: `spc_t` (a
 * "super privileged container") or `unconfined_t` lifts that, and a custom user or role picks
 * another identity. The Pod Security Standards' baseline control.
 *
 * Fields read, at pod level and in every init, regular and ephemeral container:
 *   spec.securityContext.seLinuxOptions.{type,user,role}
 *   spec.containers[*].securityContext.seLinuxOptions.{type,user,role}
 * Allowed: `type` unset, empty, container_t, container_init_t or container_kvm_t, and from v1.31
 * container_engine_t (as pod-security-admission); `user` and `role` unset or empty. `level` is
 * not judged (it picks the MCS categories that keep pods apart). Windows pods are judged too (the
 * Standards exempt none).
 * Versions: v1.0, v1.31.
 * Params: none.
 */

import { defineCheck, type Evaluator, type Finding } from '../check.js';
import { containerLabel, POD_TARGET, type PodView } from '../pod.js';
import { optObject, optString } from '../read.js';

const TYPES_1_0: readonly string[] = ['container_t', 'container_init_t', 'container_kvm_t'];
const TYPES_1_31: readonly string[] = [...TYPES_1_0, 'container_engine_t'];

function compile(allowedTypes: readonly string[]): Evaluator<PodView> {
  const allowed = new Set(allowedTypes);
  const allowedText = `unset or one of ${allowedTypes.join(', ')}`;
  return (pod) => {
    const findings: Finding[] = [];
    const setters = [
      { label: 'pod', parent: pod.spec, path: pod.path },
      ...pod.containers.map((c) => ({ label: containerLabel(c), parent: c.raw, path: c.path })),
    ];
    for (const setter of setters) {
      const scPath = [...setter.path, 'securityContext'];
      const sc = optObject(setter.parent, 'securityContext', setter.path);
      const options = sc === undefined ? undefined : optObject(sc, 'seLinuxOptions', scPath);
      if (options === undefined) continue;
      const optionsPath = [...scPath, 'seLinuxOptions'];
      const type = optString(options, 'type', optionsPath) ?? '';
      if (type !== '' && !allowed.has(type)) {
        findings.push({
          path: [...optionsPath, 'type'],
          message: `${setter.label}: securityContext.seLinuxOptions.type must be ${allowedText}, not ${JSON.stringify(type)}`,
        });
      }
      for (const field of ['user', 'role'] as const) {
        const value = optString(options, field, optionsPath) ?? '';
        if (value === '') continue;
        findings.push({
          path: [...optionsPath, field],
          message: `${setter.label}: securityContext.seLinuxOptions.${field} must be unset, not ${JSON.stringify(value)}`,
        });
      }
    }
    return findings;
  };
}

export const seLinux = defineCheck<Record<string, never>, PodView>({
  id: 'seLinux',
  target: POD_TARGET,
  summary: 'SELinux options may only pick a container type (container_t, …); never a custom user or role.',
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  versions: [
    { minimumVersion: 'v1.0', compile: () => compile(TYPES_1_0) },
    // pod-security-admission's selinuxAllowedTypes1_31: container engines in containers.
    { minimumVersion: 'v1.31', compile: () => compile(TYPES_1_31) },
  ],
});
