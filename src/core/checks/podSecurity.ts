/*
 * Check: podSecurity
 *
 * A whole level of the Kubernetes Pod Security Standards in one rule, judged the way
 * pod-security-admission judges a namespace labelled `enforce: <level>`, `enforce-version:
 * <version>`. Each control is the check that implements it, with the params of that level; no
 * control is implemented twice (the table below).
 *
 * Fields read: those of each control's check.
 * Controls, with the version from which pod-security-admission has them:
 *   baseline: privileged, windowsHostProcess (the `privileged` check), hostNamespaces,
 *     capabilities_baseline, hostPathVolumes (`hostPath` with no allowed path), hostPorts,
 *     appArmorProfile, seLinuxOptions, procMount, seccompProfile_baseline (`seccomp`, no profile
 *     required), sysctls, hostProbesAndHostLifecycle (v1.34)
 *   restricted: every baseline control, plus restrictedVolumes (replaces hostPathVolumes),
 *     allowPrivilegeEscalation (v1.8), runAsNonRoot, runAsUser (v1.23), seccompProfile_restricted
 *     (v1.19, replaces seccompProfile_baseline), capabilities_restricted (v1.22, replaces
 *     capabilities_baseline), procMount_restricted (v1.35, replaces procMount)
 * Each control's check runs with the behaviour in force at `version`; a version newer than any
 * Portcullis knows is judged as the newest (pod-security-admission clamps the same way). An
 * exempted control does not replace the baseline control it would replace: exempting
 * capabilities_restricted leaves capabilities_baseline in force.
 * Each violation names its control: `… (control: capabilities_restricted)`.
 * Versions: v1.0.
 * Params: level: baseline | restricted (required); version: latest | v1.N (default latest, the
 * newest version the pod-security-admission fixtures Portcullis is tested on hold: v1.37);
 * exemptControls: [control, …] (default none), each a control of that level.
 */

import {
  defineCheck,
  type CheckDefinition,
  type CompiledCheck,
  type Finding,
  type ParamIssue,
} from '../check.js';
import { POD_TARGET, type PodView } from '../pod.js';
import { raiseMalformed } from '../read.js';
import { compareKubeVersions, LATEST, parseKubeVersion, type KubeVersion } from '../version.js';
import { allowPrivilegeEscalation } from './allowPrivilegeEscalation.js';
import { appArmor } from './appArmor.js';
import { capabilities } from './capabilities.js';
import { hostNamespaces } from './hostNamespaces.js';
import { hostPath } from './hostPath.js';
import { hostPorts } from './hostPorts.js';
import { hostProbes } from './hostProbes.js';
import { privileged } from './privileged.js';
import { procMount } from './procMount.js';
import { runAsNonRoot } from './runAsNonRoot.js';
import { runAsUser } from './runAsUser.js';
import { seccomp } from './seccomp.js';
import { seLinux } from './seLinux.js';
import { sysctls } from './sysctls.js';
import { volumeTypes } from './volumeTypes.js';

export type Level = 'baseline' | 'restricted';

export interface Control {
  /** pod-security-admission's check id. */
  id: string;
  level: Level;
  check: CheckDefinition;
  params: Readonly<Record<string, unknown>>;
  /** The version from which pod-security-admission has this control. */
  since: KubeVersion;
  /** The baseline control this restricted one replaces (pod-security-admission's OverrideCheckIDs). */
  replaces?: string;
  /** For two controls that share one check: which of its findings are this control's. */
  owns?: (finding: Finding) => boolean;
}

const isHostProcess = (finding: Finding): boolean => finding.path.at(-1) === 'hostProcess';

/** The controls of the Pod Security Standards, each mapped to the one check that implements it. */
export const CONTROLS: readonly Control[] = [
  {
    id: 'privileged',
    level: 'baseline',
    check: privileged,
    params: {},
    since: 'v1.0',
    owns: (f) => !isHostProcess(f),
  },
  {
    id: 'windowsHostProcess',
    level: 'baseline',
    check: privileged,
    params: {},
    since: 'v1.0',
    owns: isHostProcess,
  },
  { id: 'hostNamespaces', level: 'baseline', check: hostNamespaces, params: {}, since: 'v1.0' },
  { id: 'capabilities_baseline', level: 'baseline', check: capabilities, params: {}, since: 'v1.0' },
  { id: 'hostPathVolumes', level: 'baseline', check: hostPath, params: { allowedPaths: [] }, since: 'v1.0' },
  { id: 'hostPorts', level: 'baseline', check: hostPorts, params: { allowed: [] }, since: 'v1.0' },
  { id: 'appArmorProfile', level: 'baseline', check: appArmor, params: {}, since: 'v1.0' },
  { id: 'seLinuxOptions', level: 'baseline', check: seLinux, params: {}, since: 'v1.0' },
  { id: 'procMount', level: 'baseline', check: procMount, params: {}, since: 'v1.0' },
  {
    id: 'seccompProfile_baseline',
    level: 'baseline',
    check: seccomp,
    params: { requireProfile: false, mutate: false },
    since: 'v1.0',
  },
  { id: 'sysctls', level: 'baseline', check: sysctls, params: {}, since: 'v1.0' },
  { id: 'hostProbesAndHostLifecycle', level: 'baseline', check: hostProbes, params: {}, since: 'v1.34' },
  {
    id: 'restrictedVolumes',
    level: 'restricted',
    check: volumeTypes,
    params: {},
    since: 'v1.0',
    replaces: 'hostPathVolumes',
  },
  {
    id: 'allowPrivilegeEscalation',
    level: 'restricted',
    check: allowPrivilegeEscalation,
    params: {},
    since: 'v1.8',
  },
  { id: 'runAsNonRoot', level: 'restricted', check: runAsNonRoot, params: {}, since: 'v1.0' },
  { id: 'runAsUser', level: 'restricted', check: runAsUser, params: {}, since: 'v1.23' },
  {
    id: 'seccompProfile_restricted',
    level: 'restricted',
    check: seccomp,
    params: { requireProfile: true, mutate: false },
    since: 'v1.19',
    replaces: 'seccompProfile_baseline',
  },
  {
    id: 'capabilities_restricted',
    level: 'restricted',
    check: capabilities,
    params: { allowedAdd: ['NET_BIND_SERVICE'], requiredDrop: ['ALL'] },
    since: 'v1.22',
    replaces: 'capabilities_baseline',
  },
  {
    id: 'procMount_restricted',
    level: 'restricted',
    check: procMount,
    params: { relaxInUserNamespace: false },
    since: 'v1.35',
    replaces: 'procMount',
  },
];

const CONTROL_IDS = CONTROLS.map((c) => c.id);

/** The controls of `level` in force at `version`, minus the exempted ones. */
export function controlsInForce(level: Level, version: KubeVersion, exempt: ReadonlySet<string>): Control[] {
  const inForce = CONTROLS.filter(
    (c) =>
      (c.level === 'baseline' || level === 'restricted') &&
      compareKubeVersions(c.since, version) <= 0 &&
      !exempt.has(c.id),
  );
  const replaced = new Set(inForce.flatMap((c) => (c.replaces === undefined ? [] : [c.replaces])));
  return inForce.filter((c) => !replaced.has(c.id));
}

interface Params {
  level: Level;
  version: string;
  exemptControls: string[];
}

/** A control's check, compiled with that level's params at the version; a failure is a bug in the table. */
function compileControl(control: Control, version: KubeVersion): CompiledCheck {
  const result = control.check.compileParams(control.params, version);
  if (!result.ok) {
    throw new Error(
      `podSecurity control ${control.id}: params do not compile: ${JSON.stringify(result.errors)}`,
    );
  }
  return result.compiled;
}

export const podSecurity = defineCheck<Params, PodView>({
  id: 'podSecurity',
  target: POD_TARGET,
  summary:
    'Every control of a Pod Security Standards level, as pod-security-admission judges it at a version.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['level'],
    properties: {
      level: { enum: ['baseline', 'restricted'] },
      version: { type: 'string', default: 'latest' },
      exemptControls: { type: 'array', default: [], uniqueItems: true, items: { enum: CONTROL_IDS } },
    },
  },
  validate: (params) => {
    const issues: ParamIssue[] = [];
    if (parseKubeVersion(params.version) === undefined) {
      issues.push({
        path: ['version'],
        message: `must be "latest" or a Kubernetes minor version like "${LATEST}", not ${JSON.stringify(params.version)}`,
      });
    }
    params.exemptControls.forEach((id, i) => {
      const control = CONTROLS.find((c) => c.id === id);
      if (control !== undefined && control.level === 'restricted' && params.level === 'baseline') {
        issues.push({ path: ['exemptControls', i], message: `"${id}" is not a control of level baseline` });
      }
    });
    return issues;
  },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: (params) => {
        const asked = parseKubeVersion(params.version) ?? LATEST;
        const version = compareKubeVersions(asked, LATEST) > 0 ? LATEST : asked;
        const controls = controlsInForce(params.level, version, new Set(params.exemptControls)).map(
          (control) => ({ control, compiled: compileControl(control, version) }),
        );
        return (_pod, input) => {
          const findings: Finding[] = [];
          for (const { control, compiled } of controls) {
            const result = compiled.run(input);
            if (!result.ok) raiseMalformed(result.error);
            for (const finding of result.value) {
              if (control.owns !== undefined && !control.owns(finding)) continue;
              findings.push({ path: finding.path, message: `${finding.message} (control: ${control.id})` });
            }
          }
          return findings;
        };
      },
    },
  ],
});
