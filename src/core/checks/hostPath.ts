/*
 * Check: hostPath
 *
 * A hostPath volume reads or writes the node's file system: /etc, the container runtime socket,
 * the kubelet's credentials.
 *
 * Fields read:
 *   spec.volumes[*].hostPath.path
 *   spec.{initContainers,containers,ephemeralContainers}[*].volumeMounts[*].{name,readOnly}
 * Allowed: a hostPath whose path, normalised (`.`, `..` and repeated `/` resolved), lies under an
 * `allowedPaths[].pathPrefix` by whole components: `/var/log` allows `/var/log/pods`, not
 * `/var/logs`. If every entry that allows the path has `readOnly: true`, every mount of that
 * volume, in every container, must be `readOnly: true`. A path that is not absolute is denied.
 * Versions: v1.0.
 * Params: allowedPaths: [{pathPrefix, readOnly}] (default: none, every hostPath is denied).
 */

import { defineCheck, type Finding, type ParamIssue } from '../check.js';
import { containerLabel, POD_TARGET, type PodView } from '../pod.js';

interface AllowedPath {
  pathPrefix: string;
  readOnly: boolean;
}

interface Params {
  allowedPaths: AllowedPath[];
}

/** `/var/log/../../etc//x` → ['etc', 'x']. `..` at the root stays at the root, as the kernel does. */
export function pathComponents(path: string): string[] {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out;
}

function isUnder(components: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= components.length && prefix.every((part, i) => components[i] === part);
}

export const hostPath = defineCheck<Params, PodView>({
  id: 'hostPath',
  target: POD_TARGET,
  summary: 'hostPath volumes are denied unless under an allowed path prefix (optionally read-only).',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      allowedPaths: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['pathPrefix'],
          properties: {
            pathPrefix: { type: 'string', minLength: 1 },
            readOnly: { type: 'boolean', default: false },
          },
        },
      },
    },
  },
  validate: (params) => {
    const issues: ParamIssue[] = [];
    params.allowedPaths.forEach((entry, i) => {
      if (!entry.pathPrefix.startsWith('/')) {
        issues.push({
          path: ['allowedPaths', i, 'pathPrefix'],
          message: `must be an absolute path, not "${entry.pathPrefix}"`,
        });
      }
    });
    return issues;
  },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: (params) => {
        const allowed = params.allowedPaths.map((entry) => ({
          prefix: pathComponents(entry.pathPrefix),
          readOnly: entry.readOnly,
        }));
        return (pod) => {
          const findings: Finding[] = [];
          for (const volume of pod.volumes) {
            if (volume.hostPath === undefined) continue;
            const where = [...volume.path, 'hostPath', 'path'];
            const label = `volume "${volume.name}": hostPath "${volume.hostPath}"`;
            if (!volume.hostPath.startsWith('/')) {
              findings.push({ path: where, message: `${label} must be an absolute path` });
              continue;
            }
            const components = pathComponents(volume.hostPath);
            const matches = allowed.filter((entry) => isUnder(components, entry.prefix));
            if (matches.length === 0) {
              const resolved = '/' + components.join('/');
              const shown = resolved === volume.hostPath ? '' : ` (resolves to "${resolved}")`;
              findings.push({ path: where, message: `${label}${shown} is not under an allowed path` });
              continue;
            }
            if (matches.some((entry) => !entry.readOnly)) continue;
            for (const c of pod.containers) {
              for (const mount of c.volumeMounts) {
                if (mount.name === volume.name && !mount.readOnly) {
                  findings.push({
                    path: [...mount.path, 'readOnly'],
                    message: `${containerLabel(c)}: volumeMount "${volume.name}" of hostPath "${volume.hostPath}" must set readOnly: true`,
                  });
                }
              }
            }
          }
          return findings;
        };
      },
    },
  ],
});
