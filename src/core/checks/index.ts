// The checks Portcullis knows, by id. Explicit on purpose: adding a check is one line here, and a
// meta-test (test/core/registry.test.ts) keeps every entry documented and tested.

import type { CheckDefinition } from '../check.js';
import { capabilities } from './capabilities.js';
import { clusterAdminBinding } from './clusterAdminBinding.js';
import { hostNamespaces } from './hostNamespaces.js';
import { hostPath } from './hostPath.js';
import { hostPorts } from './hostPorts.js';
import { privileged } from './privileged.js';
import { seccomp } from './seccomp.js';
import { trustedRegistries } from './trustedRegistries.js';

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
  ].map((c) => [c.id, c]),
);
