/*
 * Check: procMount
 *
 * An Unmasked /proc shows a container the kernel's files that the runtime normally hides
 * (/proc/kcore, /proc/sysrq-trigger, …): a way to read or poke at the node.
 *
 * Fields read, in every init, regular and ephemeral container of the pod (or pod template):
 *   spec.containers[*].securityContext.procMount
 *   spec.hostUsers
 * Allowed values: unset, "Default". Any other value, a typo included, is denied.
 * Versions: v1.0, v1.35.
 *   v1.0: as above, for every pod.
 *   v1.35: a pod with `hostUsers: false` runs in its own user namespace, where an unmasked /proc
 *     reaches only what that namespace owns: it may set any procMount (pod-security-admission's
 *     baseline relaxation from Kubernetes 1.35), unless `relaxInUserNamespace: false` (its
 *     restricted control, procMount_restricted, keeps the rule for every pod).
 * Params: relaxInUserNamespace (default true).
 */

import { defineCheck, type Finding } from '../check.js';
import { containerLabel, inUserNamespace, POD_TARGET, type PodView } from '../pod.js';
import { optObject, optString } from '../read.js';

interface Params {
  relaxInUserNamespace: boolean;
}

const DEFAULT = 'Default';

function unmaskedContainers(pod: PodView): Finding[] {
  const findings: Finding[] = [];
  for (const c of pod.containers) {
    const sc = optObject(c.raw, 'securityContext', c.path);
    if (sc === undefined) continue;
    const path = [...c.path, 'securityContext'];
    const procMount = optString(sc, 'procMount', path);
    if (procMount === undefined || procMount === DEFAULT) continue;
    findings.push({
      path: [...path, 'procMount'],
      message: `${containerLabel(c)}: securityContext.procMount must be unset or Default, not ${JSON.stringify(procMount)}`,
    });
  }
  return findings;
}

export const procMount = defineCheck<Params, PodView>({
  id: 'procMount',
  target: POD_TARGET,
  summary: 'Containers must keep the default /proc masks (procMount unset or Default).',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { relaxInUserNamespace: { type: 'boolean', default: true } },
  },
  versions: [
    { minimumVersion: 'v1.0', compile: () => unmaskedContainers },
    {
      minimumVersion: 'v1.35',
      compile: (params) => (pod) => {
        // Read even when not relaxing: a malformed hostUsers fails closed either way.
        const ownUserNamespace = inUserNamespace(pod);
        return params.relaxInUserNamespace && ownUserNamespace ? [] : unmaskedContainers(pod);
      },
    },
  ],
});
