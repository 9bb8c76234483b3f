// The shipped rules/default.yaml against the node-escape pods of issue 9: each door of the Pod
// Security Standards' baseline level is refused in a Pod and in every kind that carries a pod
// template, by the rule meant for it, while a compliant workload is admitted with no violation.

import t from 'tap';
import { DEFAULT_RULES_PATH, loadRuleSetFile } from '../../src/config/ruleset-source.js';
import { evaluate, type CompiledRuleSet } from '../../src/core/index.js';
import { expectDecision } from '../helpers/decisions.js';
import { objectOf } from '../helpers/pods.js';
import { debugContainer, debugRequest, POD_SPEC_PATHS, requestFor } from '../helpers/requests.js';

const loaded = await loadRuleSetFile(DEFAULT_RULES_PATH);
if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
const DEFAULT: CompiledRuleSet = loaded.loaded.ruleset;

const IMAGE = 'ghcr.io/portcullis/app:1.0';
/** A workload spec the shipped rules admit without a warning: what a careful chart renders. */
const compliant = (overrides: Record<string, unknown> = {}, container: Record<string, unknown> = {}) => ({
  securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
  containers: [
    {
      name: 'app',
      image: IMAGE,
      ports: [{ containerPort: 8080 }],
      readinessProbe: { httpGet: { path: '/healthz', port: 8080 } },
      securityContext: {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      },
      ...container,
    },
  ],
  volumes: [
    { name: 'tmp', emptyDir: {} },
    { name: 'config', configMap: { name: 'app' } },
  ],
  ...overrides,
});
const withContainerSc = (sc: Record<string, unknown>) =>
  compliant(
    {},
    { securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, ...sc } },
  );

/** Each door: the deny of the rule meant for it, and any restricted `warn` rule that also sees it. */
const doors: {
  name: string;
  spec: Record<string, unknown>;
  message: string;
  field: string;
  warning?: string;
}[] = [
  {
    name: 'hostPID',
    spec: compliant({ hostPID: true }),
    message: 'pod: hostPID must not be true [no-host-namespaces]',
    field: 'spec.hostPID',
  },
  {
    name: 'hostNetwork',
    spec: compliant({ hostNetwork: true }),
    message: 'pod: hostNetwork must not be true [no-host-namespaces]',
    field: 'spec.hostNetwork',
  },
  {
    name: 'hostIPC',
    spec: compliant({ hostIPC: true }),
    message: 'pod: hostIPC must not be true [no-host-namespaces]',
    field: 'spec.hostIPC',
  },
  {
    name: 'capabilities.add SYS_ADMIN',
    spec: withContainerSc({ capabilities: { add: ['SYS_ADMIN'], drop: ['ALL'] } }),
    message:
      'container "app": securityContext.capabilities.add must not include "SYS_ADMIN" [baseline-capabilities]',
    field: 'spec.containers[0].securityContext.capabilities.add[0]',
  },

  {
    name: 'appArmorProfile Unconfined',
    spec: withContainerSc({ appArmorProfile: { type: 'Unconfined' } }),
    message:
      'container "app": securityContext.appArmorProfile.type must be RuntimeDefault or Localhost, not "Unconfined" [no-unconfined-apparmor]',
    field: 'spec.containers[0].securityContext.appArmorProfile.type',
  },
  {
    name: 'seLinuxOptions.type spc_t',
    spec: withContainerSc({ seLinuxOptions: { type: 'spc_t' } }),
    message:
      'container "app": securityContext.seLinuxOptions.type must be unset or one of container_t, container_init_t, container_kvm_t, container_engine_t, not "spc_t" [default-selinux]',
    field: 'spec.containers[0].securityContext.seLinuxOptions.type',
  },
  {
    name: 'procMount Unmasked',
    spec: withContainerSc({ procMount: 'Unmasked' }),
    message:
      'container "app": securityContext.procMount must be unset or Default, not "Unmasked" [default-proc-mount]',
    field: 'spec.containers[0].securityContext.procMount',
  },
  {
    name: 'an unsafe sysctl',
    spec: compliant({
      securityContext: {
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
        sysctls: [{ name: 'kernel.core_pattern', value: '|/tmp/x' }],
      },
    }),
    message: 'pod: securityContext.sysctls[0] "kernel.core_pattern" is not a safe sysctl [safe-sysctls]',
    field: 'spec.securityContext.sysctls[0].name',
  },
  {
    name: 'a probe aimed at the node',
    spec: compliant({}, { livenessProbe: { httpGet: { host: '127.0.0.1', port: 10250, path: '/pods' } } }),
    message: 'container "app": livenessProbe.httpGet.host must be unset, not "127.0.0.1" [no-probe-host]',
    field: 'spec.containers[0].livenessProbe.httpGet.host',
  },
];

for (const door of doors) {
  t.test(`the shipped rules refuse ${door.name}`, async (t) => {
    for (const [kind, specPath] of POD_SPEC_PATHS) {
      const decision = evaluate(requestFor(kind, objectOf(kind, door.spec)), DEFAULT);
      const field = door.field.replace(/^spec/, specPath.join('.'));
      expectDecision(t, decision, {
        messages: door.warning === undefined ? [door.message] : [door.message, door.warning],
        fields: door.warning === undefined ? [field] : [field, field],
      });
      t.same(
        decision.violations.filter((v) => v.action === 'deny').map((v) => v.rule),
        [/\[([a-z-]+)\]$/.exec(door.message)?.[1]],
        `${kind}: denied by the rule for this door alone`,
      );
    }
  });
}

t.test('the shipped rules admit a compliant workload, in every kind, without a warning', async (t) => {
  for (const [kind] of POD_SPEC_PATHS) {
    expectDecision(t, evaluate(requestFor(kind, objectOf(kind, compliant())), DEFAULT), { messages: [] });
  }
});

// kubectl debug through the shipped no-secret-reads (allowSecrets: false): whoever may patch
// pods/ephemeralcontainers but not read secrets gets no Secret through a debug container's
// environment or mounts; one with neither is admitted. The shipped trusted-registries rule wants a
// registry.k8s.io image, and the pod rules judge the ephemeral container too: a clean one passes all.
t.test('the shipped rules refuse a debug container that takes a Secret, and admit a clean one', async (t) => {
  const image = 'registry.k8s.io/e2e-test-images/busybox:1.36.1-1';
  const into = `debug container "dbg" (image ${image}) into pod shop/web`;
  const added = (extra: Record<string, unknown>) => [debugContainer('dbg', ['env'], { image, ...extra })];
  const rows: { name: string; request: ReturnType<typeof debugRequest>; messages: string[] }[] = [
    {
      name: 'env valueFrom.secretKeyRef',
      request: debugRequest(
        added({ env: [{ name: 'P', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }] }),
      ),
      messages: [`${into}: env "P" takes key "password" of secret "db" [no-secret-reads]`],
    },
    {
      name: 'envFrom secretRef',
      request: debugRequest(added({ envFrom: [{ secretRef: { name: 'db' } }] })),
      messages: [`${into}: envFrom takes every key of secret "db" [no-secret-reads]`],
    },
    {
      name: 'the token volume mounted elsewhere',
      request: debugRequest(added({ volumeMounts: [{ name: 'kube-api-access-7xq2p', mountPath: '/mnt' }] })),
      messages: [
        `${into}: mounts volume "kube-api-access-7xq2p" (a secret or service-account token) at "/mnt" [no-secret-reads]`,
      ],
    },
    {
      name: "the target's environment through /proc (debug --target)",
      request: debugRequest(added({ command: ['sh', '-c', "tr '\\0' '\\n' < /proc/1/environ"] })),
      messages: [`${into}: command matches "*/proc/*/environ*" [no-secret-reads]`],
    },
    {
      name: 'a look-alike: /proc/1/status (distractor)',
      request: debugRequest(added({ command: ['cat', '/proc/1/status'] })),
      messages: [],
    },
    {
      name: 'a configMapKeyRef (distractor)',
      request: debugRequest(
        added({
          env: [{ name: 'L', valueFrom: { configMapKeyRef: { name: 'web-settings', key: 'level' } } }],
        }),
      ),
      messages: [],
    },
    {
      name: 'one added earlier with secret env does not fail a later clean one (distractor)',
      request: debugRequest(added({}), {
        before: [debugContainer('old', ['env'], { image, envFrom: [{ secretRef: { name: 'db' } }] })],
      }),
      messages: [],
    },
  ];
  for (const row of rows) {
    t.test(row.name, async (t) => {
      expectDecision(t, evaluate(row.request, DEFAULT), { messages: row.messages });
    });
  }
});
