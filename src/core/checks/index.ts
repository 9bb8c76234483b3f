// The checks Portcullis knows, by id. Explicit on purpose: adding a check is one line here, and a
// meta-test (test/core/registry.test.ts) keeps every entry documented and tested.

import type { CheckDefinition } from '../check.js';
import { allowPrivilegeEscalation } from './allowPrivilegeEscalation.js';
import { appArmor } from './appArmor.js';
import { capabilities } from './capabilities.js';
import { cel } from './cel.js';
import { clusterAdminBinding } from './clusterAdminBinding.js';
import { hostNamespaces } from './hostNamespaces.js';
import { hostPath } from './hostPath.js';
import { hostPorts } from './hostPorts.js';
import { hostProbes } from './hostProbes.js';
import { podExec } from './podExec.js';
import { podSecurity } from './podSecurity.js';
import { privileged } from './privileged.js';
import { procMount } from './procMount.js';
import { runAsNonRoot } from './runAsNonRoot.js';
import { runAsUser } from './runAsUser.js';
import { rbacPrivilege } from './rbacPrivilege.js';
import { seccomp } from './seccomp.js';
import { seLinux } from './seLinux.js';
import { sysctls } from './sysctls.js';
import { trustedRegistries } from './trustedRegistries.js';
import { volumeTypes } from './volumeTypes.js';

export const CHECKS: ReadonlyMap<string, CheckDefinition> = new Map(
  [
    privileged,
    hostPath,
    trustedRegistries,
    seccomp,
    clusterAdminBinding,
    hostNamespaces,
    hostPorts,
    capabilities,
    allowPrivilegeEscalation,
    runAsNonRoot,
    runAsUser,
    appArmor,
    seLinux,
    cel,
    procMount,
    hostProbes,
    sysctls,
    volumeTypes,
    podSecurity,
    rbacPrivilege,
    podExec,
  ].map((c) => [c.id, c]),
);
