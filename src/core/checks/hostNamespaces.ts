/*
 * Check: hostNamespaces
 *
 * A pod in the node's network namespace sees every interface and local service of the node; in
 * its PID namespace it can signal, trace and read the environment of every process; in its IPC
 * namespace it reads the node's shared memory. These are the doors the public "bad pods"
 * collections walk through first (the Pod Security Standards' baseline `hostNamespaces` control).
 *
 * Fields read:
 *   spec.hostNetwork
 *   spec.hostPID
 *   spec.hostIPC
 * Allowed values: unset, false. Windows pods are judged too (pod-security-admission exempts none).
 * Versions: v1.0.
 * Params: none.
 */

import { defineCheck, type Finding } from '../check.js';
import { POD_TARGET, type PodView } from '../pod.js';
import { optBoolean } from '../read.js';

const HOST_NAMESPACE_FIELDS = ['hostNetwork', 'hostPID', 'hostIPC'] as const;

export const hostNamespaces = defineCheck<Record<string, never>, PodView>({
  id: 'hostNamespaces',
  target: POD_TARGET,
  summary: "Pods must not share the node's network, PID or IPC namespace (hostNetwork, hostPID, hostIPC).",
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: () => (pod) => {
        const findings: Finding[] = [];
        for (const field of HOST_NAMESPACE_FIELDS) {
          if (optBoolean(pod.spec, field, pod.path) === true) {
            findings.push({ path: [...pod.path, field], message: `pod: ${field} must not be true` });
          }
        }
        return findings;
      },
    },
  ],
});
