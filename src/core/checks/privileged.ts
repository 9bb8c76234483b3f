/*
 * Check: privileged (v1)
 *
 * A privileged container has every capability and every host device: it is root on the node.
 * Windows HostProcess containers are the same door on Windows nodes.
 *
 * Fields read, in every init, regular and ephemeral container of the pod (or pod template):
 *   spec.containers[*].securityContext.privileged
 *   spec.containers[*].securityContext.windowsOptions.hostProcess
 *   spec.securityContext.windowsOptions.hostProcess
 * Allowed values: unset, false.
 * Params: none.
 */

import { definePodCheck, type Finding } from '../check.js';
import { containerLabel } from '../pod.js';

export const privileged = definePodCheck<Record<string, never>>({
  id: 'privileged',
  summary: 'Containers must not run privileged (securityContext.privileged, Windows hostProcess).',
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  compile: () => (pod) => {
    const findings: Finding[] = [];
    if (pod.securityContext.hostProcess === true) {
      findings.push({
        path: [...pod.path, 'securityContext', 'windowsOptions', 'hostProcess'],
        message: 'pod: securityContext.windowsOptions.hostProcess must not be true',
      });
    }
    for (const c of pod.containers) {
      if (c.securityContext.privileged === true) {
        findings.push({
          path: [...c.path, 'securityContext', 'privileged'],
          message: `${containerLabel(c)}: securityContext.privileged must not be true`,
        });
      }
      if (c.securityContext.hostProcess === true) {
        findings.push({
          path: [...c.path, 'securityContext', 'windowsOptions', 'hostProcess'],
          message: `${containerLabel(c)}: securityContext.windowsOptions.hostProcess must not be true`,
        });
      }
    }
    return findings;
  },
});
