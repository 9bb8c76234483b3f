/*
 * Check: privileged
 *
 * A privileged container has every capability and every host device: it is root on the node.
 * Windows HostProcess containers are the same door on Windows nodes.
 *
 * Fields read, in every init, regular and ephemeral container of the pod (or pod template):
 *   spec.containers[*].securityContext.privileged
 *   spec.containers[*].securityContext.windowsOptions.hostProcess
 *   spec.securityContext.windowsOptions.hostProcess
 * Allowed values: unset, false.
 * Versions: v1.0.
 * Params: none.
 */

import { defineCheck, type Finding } from '../check.js';
import { containerLabel, POD_TARGET, type PodView } from '../pod.js';

export const privileged = defineCheck<Record<string, never>, PodView>({
  id: 'privileged',
  target: POD_TARGET,
  summary: 'Containers must not run privileged (securityContext.privileged, Windows hostProcess).',
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  versions: [
    {
      minimumVersion: 'v1.0',
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
    },
  ],
});
