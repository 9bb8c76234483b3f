/*
 * Check: hostProbes
 *
 * A probe or lifecycle hook with a `host` makes the kubelet, on the node, open a connection to any
 * address the pod's author names: the node's own loopback services, the cloud metadata endpoint,
 * other tenants. Without `host` the kubelet talks to the pod's own IP.
 *
 * Fields read, in every init, regular and ephemeral container of the pod (or pod template):
 *   spec.containers[*].{livenessProbe,readinessProbe,startupProbe}.{httpGet,tcpSocket}.host
 *   spec.containers[*].lifecycle.{postStart,preStop}.{httpGet,tcpSocket}.host
 * Allowed values: unset, "".
 * Versions: v1.0.
 *   pod-security-admission enforces this control (hostProbesAndHostLifecycle) from Kubernetes 1.34
 *   on: `podSecurity` applies it from v1.34, a rule of this check at every version.
 * Params: none.
 */

import { defineCheck, type Finding } from '../check.js';
import { containerLabel, POD_TARGET, type PodView } from '../pod.js';
import { optObject, optString, type JsonObject } from '../read.js';
import type { FieldPath } from '../types.js';

const PROBES = ['livenessProbe', 'readinessProbe', 'startupProbe'] as const;
const HOOKS = ['postStart', 'preStop'] as const;
const HANDLERS = ['httpGet', 'tcpSocket'] as const;

/** The `host` findings of one probe or hook (`handlerPath` is its path, `shown` how a message names it). */
function hostsOf(
  handler: JsonObject,
  handlerPath: FieldPath,
  shown: string,
  label: string,
  findings: Finding[],
): void {
  for (const kind of HANDLERS) {
    const action = optObject(handler, kind, handlerPath);
    if (action === undefined) continue;
    const host = optString(action, 'host', [...handlerPath, kind]);
    if (host === undefined || host === '') continue;
    findings.push({
      path: [...handlerPath, kind, 'host'],
      message: `${label}: ${shown}.${kind}.host must be unset, not ${JSON.stringify(host)}`,
    });
  }
}

export const hostProbes = defineCheck<Record<string, never>, PodView>({
  id: 'hostProbes',
  target: POD_TARGET,
  summary: 'Probes and lifecycle hooks must not name a host (the kubelet would connect to it from the node).',
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: () => (pod) => {
        const findings: Finding[] = [];
        for (const c of pod.containers) {
          const label = containerLabel(c);
          for (const probe of PROBES) {
            const handler = optObject(c.raw, probe, c.path);
            if (handler !== undefined) hostsOf(handler, [...c.path, probe], probe, label, findings);
          }
          const lifecycle = optObject(c.raw, 'lifecycle', c.path);
          if (lifecycle === undefined) continue;
          const lifecyclePath = [...c.path, 'lifecycle'];
          for (const hook of HOOKS) {
            const handler = optObject(lifecycle, hook, lifecyclePath);
            if (handler !== undefined)
              hostsOf(handler, [...lifecyclePath, hook], `lifecycle.${hook}`, label, findings);
          }
        }
        return findings;
      },
    },
  ],
});
