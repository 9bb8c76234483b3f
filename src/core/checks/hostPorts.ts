/*
 * Check: hostPorts
 *
 * A hostPort binds a port on the node's own addresses: it bypasses NetworkPolicy, can shadow a
 * node service, and pins the pod to nodes where the port is free (the Pod Security Standards'
 * baseline `hostPorts` control).
 *
 * Fields read, in every init, regular and ephemeral container of the pod (or pod template):
 *   spec.containers[*].ports[*].hostPort
 * Allowed values: unset, 0, or a port inside one of `params.allowed` (both ends inclusive).
 * Windows pods are judged too (pod-security-admission exempts none).
 * Versions: v1.0.
 * Params: allowed: [{min, max}] (default: none, every hostPort is denied).
 */

import { defineCheck, type Finding, type ParamIssue } from '../check.js';
import { containerLabel, POD_TARGET, type PodView } from '../pod.js';
import { asObject, optInteger, optList } from '../read.js';

interface PortRange {
  min: number;
  max: number;
}

interface Params {
  allowed: PortRange[];
}

const PORT = { type: 'integer', minimum: 1, maximum: 65535 };

function rangeText(range: PortRange): string {
  return range.min === range.max ? String(range.min) : `${range.min}-${range.max}`;
}

export const hostPorts = defineCheck<Params, PodView>({
  id: 'hostPorts',
  target: POD_TARGET,
  summary: 'Containers must not bind host ports (ports[*].hostPort), except inside the allowed ranges.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      allowed: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['min', 'max'],
          properties: { min: PORT, max: PORT },
        },
      },
    },
  },
  validate: (params) => {
    const issues: ParamIssue[] = [];
    params.allowed.forEach((range, i) => {
      if (range.max < range.min) {
        issues.push({ path: ['allowed', i, 'max'], message: `must not be below min (${range.min})` });
      }
    });
    return issues;
  },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: (params) => {
        const ranges = params.allowed.map((range) => ({ ...range }));
        const allowedText =
          ranges.length === 0 ? 'unset or 0' : `unset, 0 or in ${ranges.map(rangeText).join(', ')}`;
        return (pod) => {
          const findings: Finding[] = [];
          for (const c of pod.containers) {
            optList(c.raw, 'ports', c.path).forEach((rawPort, index) => {
              const portPath = [...c.path, 'ports', index];
              const hostPort = optInteger(asObject(rawPort, portPath), 'hostPort', portPath);
              if (hostPort === undefined || hostPort === 0) return;
              if (ranges.some((range) => range.min <= hostPort && hostPort <= range.max)) return;
              findings.push({
                path: [...portPath, 'hostPort'],
                message: `${containerLabel(c)}: ports[${index}].hostPort must be ${allowedText}, not ${hostPort}`,
              });
            });
          }
          return findings;
        };
      },
    },
  ],
});
