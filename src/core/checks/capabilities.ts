/*
 * Check: capabilities
 *
 * Linux capabilities are root's powers cut into pieces: SYS_ADMIN alone mounts file systems and
 * escapes most containers, NET_RAW forges packets, SYS_PTRACE reads other processes. This is the
 * Pod Security Standards' baseline `capabilities` control (`allowedAdd` defaults to its set) and,
 * with `allowedAdd: [NET_BIND_SERVICE]` and `requiredDrop: [ALL]`, its restricted one.
 *
 * Fields read, in every init, regular and ephemeral container of the pod (or pod template):
 *   spec.containers[*].securityContext.capabilities.add
 *   spec.containers[*].securityContext.capabilities.drop
 *   spec.os.name
 * Allowed: every name in `add` is exactly one of `allowedAdd`, and `drop` holds every name of
 * `requiredDrop` exactly (or `ALL`). Names compare exactly, as pod-security-admission compares
 * them: container runtimes accept `CAP_SYS_ADMIN` and `sys_admin` for SYS_ADMIN, so an added
 * `CAP_CHOWN` is denied though CHOWN is allowed (no spelling slips past the list), and a dropped
 * `all` does not count as `ALL` (a required drop must be spelled as required).
 * From v1.25 a rule with `requiredDrop` does not judge pods with `spec.os.name: windows`, as
 * pod-security-admission's restricted control: Windows has no Linux capabilities and the API
 * server refuses a Windows pod that sets any. A rule without `requiredDrop` (baseline) judges
 * Windows pods at every version, as pod-security-admission's baseline control does.
 * Versions: v1.0, v1.25.
 * Params: allowedAdd (default: AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD,
 * NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT); requiredDrop (default none).
 */

import { defineCheck, type Evaluator, type Finding, type ParamIssue } from '../check.js';
import { containerLabel, POD_TARGET, type PodView } from '../pod.js';
import { optObject, optStringList } from '../read.js';

interface Params {
  allowedAdd: string[];
  requiredDrop: string[];
}

/** The Pod Security Standards' baseline set: what container runtimes grant by default, minus NET_RAW. */
export const BASELINE_CAPABILITIES: readonly string[] = [
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
];

const ALL = 'ALL';
const NAME_RE = /^[A-Z][A-Z0-9_]*$/;

/** The name a runtime would read: `cap_chown` and `CAP_CHOWN` are CHOWN to containerd and CRI-O. */
function runtimeName(name: string): string {
  const upper = name.toUpperCase();
  return upper.startsWith('CAP_') ? upper.slice('CAP_'.length) : upper;
}

function nameIssues(names: readonly string[], field: keyof Params): ParamIssue[] {
  const issues: ParamIssue[] = [];
  names.forEach((name, i) => {
    if (!NAME_RE.test(name) || name.startsWith('CAP_')) {
      issues.push({
        path: [field, i],
        message: `must be a capability name in upper case without "CAP_" (like "${runtimeName(name) || 'NET_ADMIN'}"), not ${JSON.stringify(name)}`,
      });
    }
  });
  return issues;
}

const quoted = (names: readonly string[]) => names.map((n) => JSON.stringify(n)).join(', ');

function compile(params: Params, exemptWindows: boolean): Evaluator<PodView> {
  const allowedAdd = new Set(params.allowedAdd);
  const requiredDrop = [...new Set(params.requiredDrop)];
  return (pod) => {
    if (exemptWindows && requiredDrop.length > 0 && pod.os === 'windows') return [];
    const findings: Finding[] = [];
    for (const c of pod.containers) {
      const scPath = [...c.path, 'securityContext'];
      const sc = optObject(c.raw, 'securityContext', c.path);
      const capabilities = sc === undefined ? undefined : optObject(sc, 'capabilities', scPath);
      const capsPath = [...scPath, 'capabilities'];
      const add = capabilities === undefined ? [] : optStringList(capabilities, 'add', capsPath);
      const drop = capabilities === undefined ? [] : optStringList(capabilities, 'drop', capsPath);
      add.forEach((name, index) => {
        if (allowedAdd.has(name)) return;
        const meant = runtimeName(name);
        const hint = meant !== name && allowedAdd.has(meant) ? ` (write "${meant}")` : '';
        findings.push({
          path: [...capsPath, 'add', index],
          message: `${containerLabel(c)}: securityContext.capabilities.add must not include ${JSON.stringify(name)}${hint}`,
        });
      });
      if (drop.includes(ALL)) continue;
      const missing = requiredDrop.filter((name) => !drop.includes(name));
      if (missing.length === 0) continue;
      // `all` or `CAP_NET_RAW` may well work on the node, but the rule asks for the exact name.
      const misspelt = drop.filter((name) => {
        const meant = runtimeName(name);
        return meant !== name && (meant === ALL || missing.includes(meant));
      });
      const hint =
        misspelt.length === 0 ? '' : ` (write ${quoted(misspelt.map(runtimeName))}, not ${quoted(misspelt)})`;
      findings.push({
        path: [...capsPath, 'drop'],
        message: `${containerLabel(c)}: securityContext.capabilities.drop must include ${quoted(missing)}${hint}`,
      });
    }
    return findings;
  };
}

export const capabilities = defineCheck<Params, PodView>({
  id: 'capabilities',
  target: POD_TARGET,
  summary:
    'Containers may add only the allowed Linux capabilities (default: the baseline set) and must drop the required ones.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      allowedAdd: { type: 'array', items: { type: 'string' }, default: [...BASELINE_CAPABILITIES] },
      requiredDrop: { type: 'array', items: { type: 'string' }, default: [] },
    },
  },
  validate: (params) => [
    ...nameIssues(params.allowedAdd, 'allowedAdd'),
    ...nameIssues(params.requiredDrop, 'requiredDrop'),
  ],
  versions: [
    { minimumVersion: 'v1.0', compile: (params) => compile(params, false) },
    // pod-security-admission's capabilitiesRestricted_1_25: Windows pods cannot set capabilities.
    { minimumVersion: 'v1.25', compile: (params) => compile(params, true) },
  ],
});
