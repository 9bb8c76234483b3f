/*
 * Check: sysctls
 *
 * Most kernel parameters are not namespaced: a pod that sets one sets it for the whole node, and
 * the others can disable its protections. The Pod Security Standards allow a "safe" set: those
 * namespaced to the pod and isolated from every other pod on the node.
 *
 * Fields read: spec.securityContext.sysctls[*].name (the only place the API takes sysctls).
 * Allowed: the safe set of the version in force, plus `allowed`. Names compare exactly, as
 * pod-security-admission compares them (`net/ipv4/tcp_syncookies` is not the dotted name).
 * Versions: v1.0, v1.27, v1.29, v1.32, v1.37.
 *   v1.0: kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.tcp_syncookies,
 *     net.ipv4.ping_group_range, net.ipv4.ip_unprivileged_port_start
 *   v1.27: adds net.ipv4.ip_local_reserved_ports
 *   v1.29: adds net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl,
 *     net.ipv4.tcp_keepalive_probes
 *   v1.32: adds net.ipv4.tcp_rmem, net.ipv4.tcp_wmem
 *   v1.37: adds net.ipv4.tcp_slow_start_after_idle, net.ipv4.tcp_notsent_lowat
 * Params: allowed: [sysctl name, …] (default none): names to allow besides the safe set, e.g. a
 * sysctl the kubelets are started with `--allowed-unsafe-sysctls` for.
 */

import { defineCheck, type Finding, type ParamIssue } from '../check.js';
import { POD_TARGET, type PodView } from '../pod.js';
import { asObject, optList, optObject, reqString } from '../read.js';
import type { KubeVersion } from '../version.js';

interface Params {
  allowed: string[];
}

/** The safe set as pod-security-admission grows it, by the version that added each name. */
const SAFE_SYSCTLS: readonly (readonly [KubeVersion, readonly string[]])[] = [
  [
    'v1.0',
    [
      'kernel.shm_rmid_forced',
      'net.ipv4.ip_local_port_range',
      'net.ipv4.tcp_syncookies',
      'net.ipv4.ping_group_range',
      'net.ipv4.ip_unprivileged_port_start',
    ],
  ],
  ['v1.27', ['net.ipv4.ip_local_reserved_ports']],
  [
    'v1.29',
    [
      'net.ipv4.tcp_keepalive_time',
      'net.ipv4.tcp_fin_timeout',
      'net.ipv4.tcp_keepalive_intvl',
      'net.ipv4.tcp_keepalive_probes',
    ],
  ],
  ['v1.32', ['net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem']],
  ['v1.37', ['net.ipv4.tcp_slow_start_after_idle', 'net.ipv4.tcp_notsent_lowat']],
];

/** The Kubernetes grammar of a sysctl name (dots or slashes between segments). */
const SYSCTL_NAME_RE = /^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$/;

/** Every name safe at the version that is the `index`-th of SAFE_SYSCTLS. */
function safeUpTo(index: number): ReadonlySet<string> {
  return new Set(SAFE_SYSCTLS.slice(0, index + 1).flatMap(([, names]) => names));
}

export const sysctls = defineCheck<Params, PodView>({
  id: 'sysctls',
  target: POD_TARGET,
  summary: 'Pods may set only the sysctls the Pod Security Standards call safe (and those allowed).',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      allowed: { type: 'array', default: [], uniqueItems: true, items: { type: 'string', minLength: 1 } },
    },
  },
  validate: (params) => {
    const issues: ParamIssue[] = [];
    params.allowed.forEach((name, i) => {
      if (!SYSCTL_NAME_RE.test(name))
        issues.push({ path: ['allowed', i], message: `"${name}" is not a sysctl name` });
    });
    return issues;
  },
  versions: SAFE_SYSCTLS.map(([minimumVersion], index) => ({
    minimumVersion,
    compile: (params: Params) => {
      const allowed = new Set([...safeUpTo(index), ...params.allowed]);
      return (pod: PodView) => {
        const sc = optObject(pod.spec, 'securityContext', pod.path);
        if (sc === undefined) return [];
        const scPath = [...pod.path, 'securityContext'];
        const findings: Finding[] = [];
        optList(sc, 'sysctls', scPath).forEach((raw, i) => {
          const entryPath = [...scPath, 'sysctls', i];
          // A sysctl without a name cannot be judged: it fails closed.
          const name = reqString(asObject(raw, entryPath), 'name', entryPath);
          if (allowed.has(name)) return;
          findings.push({
            path: [...entryPath, 'name'],
            message: `pod: securityContext.sysctls[${i}] "${name}" is not a safe sysctl`,
          });
        });
        return findings;
      };
    },
  })),
});
