// Builders for admission requests in tests: a real AdmissionRequest shape, with only what varies
// between cases spelled out at the call site.

import type { AdmissionRequest, GroupVersionKind, Operation } from '../../src/core/index.js';

const GROUP_OF_KIND: Record<string, { group: string; version: string; resource: string }> = {
  Pod: { group: '', version: 'v1', resource: 'pods' },
  PodTemplate: { group: '', version: 'v1', resource: 'podtemplates' },
  ReplicationController: { group: '', version: 'v1', resource: 'replicationcontrollers' },
  Deployment: { group: 'apps', version: 'v1', resource: 'deployments' },
  DaemonSet: { group: 'apps', version: 'v1', resource: 'daemonsets' },
  StatefulSet: { group: 'apps', version: 'v1', resource: 'statefulsets' },
  ReplicaSet: { group: 'apps', version: 'v1', resource: 'replicasets' },
  Job: { group: 'batch', version: 'v1', resource: 'jobs' },
  CronJob: { group: 'batch', version: 'v1', resource: 'cronjobs' },
  RoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'rolebindings' },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings' },
  Role: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'roles' },
  ClusterRole: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles' },
  ConfigMap: { group: '', version: 'v1', resource: 'configmaps' },
};

const CLUSTER_SCOPED: ReadonlySet<string> = new Set(['ClusterRoleBinding', 'ClusterRole']);

export interface RequestOptions {
  operation?: Operation;
  namespace?: string;
  username?: string;
  groups?: string[];
  subResource?: string;
  oldObject?: unknown;
  dryRun?: boolean;
}

export function requestFor(kind: string, object: unknown, options: RequestOptions = {}): AdmissionRequest {
  const gvr = GROUP_OF_KIND[kind];
  if (gvr === undefined) throw new Error(`test helper: unknown kind ${kind}`);
  const gvk: GroupVersionKind = { group: gvr.group, version: gvr.version, kind };
  return {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: gvk,
    resource: { group: gvr.group, version: gvr.version, resource: gvr.resource },
    ...(options.subResource === undefined ? {} : { subResource: options.subResource }),
    namespace: options.namespace ?? (CLUSTER_SCOPED.has(kind) ? undefined : 'default'),
    operation: options.operation ?? 'CREATE',
    userInfo: { username: options.username ?? 'alice', groups: options.groups ?? ['system:authenticated'] },
    object,
    ...(options.oldObject === undefined ? {} : { oldObject: options.oldObject }),
    dryRun: options.dryRun ?? false,
  };
}

/** A compliant pod spec: trusted image, RuntimeDefault seccomp, nothing privileged. */
export function podSpec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
    containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
    ...overrides,
  };
}

export function pod(spec: Record<string, unknown> = podSpec()): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec };
}

/** Where each kind that carries a pod keeps its pod spec, as the Kubernetes API defines them. */
export const POD_SPEC_PATHS: readonly (readonly [kind: string, specPath: readonly string[]])[] = [
  ['Pod', ['spec']],
  ['PodTemplate', ['template', 'spec']],
  ['ReplicationController', ['spec', 'template', 'spec']],
  ['Deployment', ['spec', 'template', 'spec']],
  ['DaemonSet', ['spec', 'template', 'spec']],
  ['StatefulSet', ['spec', 'template', 'spec']],
  ['ReplicaSet', ['spec', 'template', 'spec']],
  ['Job', ['spec', 'template', 'spec']],
  ['CronJob', ['spec', 'jobTemplate', 'spec', 'template', 'spec']],
];

export type ConnectSubresource = 'exec' | 'attach' | 'portforward';

const OPTIONS_KIND: Record<ConnectSubresource, string> = {
  exec: 'PodExecOptions',
  attach: 'PodAttachOptions',
  portforward: 'PodPortForwardOptions',
};

/**
 * A CONNECT into pod `shop/web` as kube-apiserver 1.34 sends it for kubectl exec, attach and
 * port-forward: the options as `object` (with their kind), `oldObject` null, only the pod's name.
 */
export function connectRequest(
  subresource: ConnectSubresource,
  options: Record<string, unknown> = {},
  request: { namespace?: string; name?: string; username?: string; groups?: string[] } = {},
): AdmissionRequest {
  const kind: GroupVersionKind = { group: '', version: 'v1', kind: OPTIONS_KIND[subresource] };
  const resource = { group: '', version: 'v1', resource: 'pods' };
  return {
    uid: 'c6513d31-6f99-4b90-8c3b-551c7ddf89d2',
    kind,
    resource,
    subResource: subresource,
    requestKind: kind,
    requestResource: resource,
    requestSubResource: subresource,
    name: request.name ?? 'web',
    namespace: request.namespace ?? 'shop',
    operation: 'CONNECT',
    userInfo: {
      username: request.username ?? 'alice',
      groups: request.groups ?? ['system:authenticated'],
    },
    object: { kind: kind.kind, apiVersion: 'v1', ...options },
    oldObject: null,
    dryRun: false,
    options: null,
  };
}

/** What `kubectl exec -c app -- ARGV...` sends (add `stdin`/`tty` for -i/-t). */
export function execOptions(command: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { stdout: true, stderr: true, container: 'app', command, ...extra };
}

/** The pod `shop/web` before `kubectl debug`: one container, the service-account token volume every pod gets. */
export function runningPod(extra: { ephemeralContainers?: unknown[]; labels?: Record<string, string> } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'shop', labels: { app: 'web', ...extra.labels } },
    spec: {
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/pause:3.10',
          volumeMounts: [
            {
              name: 'kube-api-access-7xq2p',
              mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
              readOnly: true,
            },
          ],
        },
      ],
      volumes: [
        {
          name: 'kube-api-access-7xq2p',
          projected: {
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            ],
          },
        },
        { name: 'tls', secret: { secretName: 'web-tls' } },
        { name: 'settings', configMap: { name: 'web-settings' } },
        { name: 'scratch', emptyDir: {} },
      ],
      ...(extra.ephemeralContainers === undefined ? {} : { ephemeralContainers: extra.ephemeralContainers }),
    },
  };
}

/** An ephemeral container as `kubectl debug web --image=IMAGE --target=app -- ARGV...` writes it. */
export function debugContainer(
  name: string,
  command: string[] | undefined,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name,
    image: 'busybox',
    ...(command === undefined ? {} : { command }),
    targetContainerName: 'app',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'Always',
    resources: {},
    ...extra,
  };
}

/**
 * `kubectl debug` as kube-apiserver 1.34 sends it (checked in test/e2e/exec.test.ts): an UPDATE of
 * pods/ephemeralcontainers of pod `shop/web`, the Pod with its new spec.ephemeralContainers as
 * `object`, the pod before as `oldObject`.
 */
export function debugRequest(
  added: unknown[],
  options: {
    before?: unknown[];
    labels?: Record<string, string>;
    username?: string;
    groups?: string[];
    namespace?: string;
  } = {},
): AdmissionRequest {
  const before = options.before ?? [];
  const labels = options.labels ?? {};
  const namespace = options.namespace ?? 'shop';
  const withNamespace = <T extends { metadata: Record<string, unknown> }>(pod: T): T => ({
    ...pod,
    metadata: { ...pod.metadata, namespace },
  });
  return {
    ...requestFor('Pod', withNamespace(runningPod({ ephemeralContainers: [...before, ...added], labels })), {
      operation: 'UPDATE',
      subResource: 'ephemeralcontainers',
      namespace,
      username: options.username ?? 'alice',
      groups: options.groups ?? ['system:authenticated'],
      oldObject: withNamespace(
        runningPod({ ...(before.length === 0 ? {} : { ephemeralContainers: before }), labels }),
      ),
    }),
    name: 'web',
  };
}
