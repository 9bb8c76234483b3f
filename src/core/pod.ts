// Finds the pod spec inside any object that carries one, and reads the fields the pod checks use.
// Every container list (init, regular, ephemeral) is read here once, so no check walks a pod on its
// own and none can forget a list (the pod-security-admission visitor does the same).

import {
  asObject,
  isObject,
  optBoolean,
  optList,
  optObject,
  optString,
  overLimit,
  reqString,
  type JsonObject,
} from './read.js';
import { defineTarget } from './target.js';
import type { AdmissionRequest, FieldPath } from './types.js';

/** Where each kind keeps its pod spec. Keyed by `group/kind` (core group is empty). */
const POD_SPEC_PATHS: ReadonlyMap<string, readonly string[]> = new Map<string, readonly string[]>([
  ['/Pod', ['spec']],
  ['/PodTemplate', ['template', 'spec']],
  ['/ReplicationController', ['spec', 'template', 'spec']],
  ['apps/Deployment', ['spec', 'template', 'spec']],
  ['apps/DaemonSet', ['spec', 'template', 'spec']],
  ['apps/StatefulSet', ['spec', 'template', 'spec']],
  ['apps/ReplicaSet', ['spec', 'template', 'spec']],
  ['batch/Job', ['spec', 'template', 'spec']],
  ['batch/CronJob', ['spec', 'jobTemplate', 'spec', 'template', 'spec']],
]);

export function podSpecPath(group: string, kind: string): readonly string[] | undefined {
  return POD_SPEC_PATHS.get(`${group}/${kind}`);
}

export const POD_TEMPLATE_KINDS: readonly string[] = [...POD_SPEC_PATHS.keys()];

/**
 * A CEL expression for the API server (a webhook's matchCondition) that is `condition` of the pod
 * spec of whatever pod-carrying kind the request is, false when that spec is missing (validation
 * denies such an object), and true for any other kind. Never errors: every step is guarded by has().
 */
export function podSpecCondition(condition: (spec: string) => string): string {
  const kindsByPath = new Map<string, string[]>();
  for (const [groupKind, path] of POD_SPEC_PATHS) {
    const [group = '', kind = ''] = groupKind.split('/');
    const key = path.join('.');
    kindsByPath.set(key, [
      ...(kindsByPath.get(key) ?? []),
      `(request.kind.group == '${group}' && request.kind.kind == '${kind}')`,
    ]);
  }
  const branches = [...kindsByPath].map(([dotted, kinds]) => {
    const path = dotted.split('.');
    const guards = path.map((_, i) => `has(object.${path.slice(0, i + 1).join('.')})`);
    return `${kinds.join(' || ')} ? (${guards.join(' && ')} && ${condition(`object.${dotted}`)})`;
  });
  return `${branches.join(' : ')} : true`;
}

/** `kubectl debug` adds containers through this subresource: it is judged like the pod itself. */
const JUDGED_SUBRESOURCES: ReadonlySet<string> = new Set(['', 'pods/ephemeralcontainers']);

/** Annotations that change what a container may do (the older, field-less forms of AppArmor and seccomp). */
const JUDGED_ANNOTATION_PREFIXES: readonly string[] = [
  'container.apparmor.security.beta.kubernetes.io/',
  'seccomp.security.alpha.kubernetes.io/',
  'container.seccomp.security.alpha.kubernetes.io/',
];

/** The pod, or the pod template, of any kind that carries one. */
export const POD_TARGET = defineTarget<PodView>({
  id: 'pod',
  operations: ['CREATE', 'UPDATE'],
  accepts: (request) => {
    const sub = request.subResource ?? '';
    return (
      podSpecPath(request.kind.group, request.kind.kind) !== undefined &&
      JUDGED_SUBRESOURCES.has(sub === '' ? '' : `${request.resource.resource}/${sub}`)
    );
  },
  read: (object, request) => readPodOf(object, request),
  // The whole pod spec and the judged annotations: a check may read any field of the spec.
  judgedPart: (pod) => ({ spec: pod.spec, annotations: pod.annotations }),
  // A running pod's spec is immutable: patching it on UPDATE would make the API server refuse a
  // harmless relabel. Subresource writes cannot change the pod spec.
  mutable: (request) =>
    (request.subResource ?? '') === '' && (request.kind.kind !== 'Pod' || request.operation === 'CREATE'),
});

function readPodOf(object: unknown, request: AdmissionRequest): PodView {
  const specPath = podSpecPath(request.kind.group, request.kind.kind) ?? ['spec'];
  // The pod's own metadata, or its template's: where the judged annotations live.
  const parentPath = specPath.slice(0, -1);
  let parent = asObject(object, []);
  parentPath.forEach((key, i) => {
    parent = asObject(parent[key], parentPath.slice(0, i + 1));
  });
  const specKey = specPath[specPath.length - 1] ?? 'spec';
  const spec = asObject(parent[specKey], specPath);
  const metadataPath = [...parentPath, 'metadata'];
  return readPodSpec(
    spec,
    specPath,
    readAnnotations(optObject(parent, 'metadata', parentPath), metadataPath),
  );
}

function readAnnotations(
  metadata: JsonObject | undefined,
  metadataPath: FieldPath,
): Readonly<Record<string, string>> {
  const annotations = metadata === undefined ? undefined : optObject(metadata, 'annotations', metadataPath);
  const judged: Record<string, string> = {};
  if (annotations === undefined) return judged;
  for (const [key, value] of Object.entries(annotations)) {
    if (!JUDGED_ANNOTATION_PREFIXES.some((prefix) => key.startsWith(prefix))) continue;
    if (typeof value !== 'string') optString(annotations, key, [...metadataPath, 'annotations']);
    else judged[key] = value;
  }
  return judged;
}

/**
 * Beyond these a pod is denied unread (fail closed). Real workloads stay far below them (tens of
 * containers, a hundred volumes, a few ports each); without them one 3 MiB review of 1,000,000
 * empty containers built a million views and a 58 MB deny message. Containers count init, regular
 * and ephemeral together; ports count every container's.
 */
export const POD_LIMITS = { containers: 256, volumes: 512, volumeMounts: 512, ports: 1024 } as const;

export type ContainerList = 'initContainers' | 'containers' | 'ephemeralContainers';
const CONTAINER_LISTS: readonly ContainerList[] = ['initContainers', 'containers', 'ephemeralContainers'];

export interface SecurityContextView {
  privileged: boolean | undefined;
  hostProcess: boolean | undefined;
  seccompProfileType: string | undefined;
}

export interface ContainerView {
  list: ContainerList;
  name: string;
  image: string | undefined;
  securityContext: SecurityContextView;
  volumeMounts: readonly { name: string; readOnly: boolean; path: FieldPath }[];
  /** Path of this container from the object root. */
  path: FieldPath;
  /** The container as sent, for checks that read fields this view does not (through read.ts). */
  raw: JsonObject;
}

export interface VolumeView {
  name: string;
  hostPath: string | undefined;
  path: FieldPath;
}

export interface PodView {
  /** Path of the pod spec from the object root (`spec`, `spec.template.spec`, …). */
  path: FieldPath;
  os: string | undefined;
  securityContext: SecurityContextView;
  containers: readonly ContainerView[];
  volumes: readonly VolumeView[];
  /** The pod spec as sent, for checks that read fields this view does not (through read.ts). */
  spec: JsonObject;
  /**
   * The pod's (or template's) annotations that judge containers (AppArmor's and seccomp's older
   * forms), keyed as sent; the path of `metadata` is `annotationsPath`.
   */
  annotations: Readonly<Record<string, string>>;
  annotationsPath: FieldPath;
  /** Whether the pod spec has a securityContext object (a JSON Patch adds into it, or adds it). */
  hasSecurityContext: boolean;
}

/** How a message names a container: `container "app"`, `initContainer "setup"`, … */
export function containerLabel(c: ContainerView): string {
  return `${c.list.slice(0, -1)} "${c.name}"`;
}

function readPodSpec(
  spec: JsonObject,
  path: FieldPath,
  annotations: Readonly<Record<string, string>>,
): PodView {
  const os = optObject(spec, 'os', path);
  const lists = CONTAINER_LISTS.map((list) => ({ list, items: optList(spec, list, path) }));
  checkPodLimits(spec, path, lists);
  const containers: ContainerView[] = [];
  for (const { list, items } of lists) {
    items.forEach((raw, index) => {
      containers.push(readContainer(raw, list, [...path, list, index]));
    });
  }
  const volumes = optList(spec, 'volumes', path).map((raw, index): VolumeView => {
    const volumePath = [...path, 'volumes', index];
    const volume = asObject(raw, volumePath);
    const hostPath = optObject(volume, 'hostPath', volumePath);
    return {
      name: optString(volume, 'name', volumePath) ?? '',
      // A hostPath volume without a path string is malformed, not harmless.
      hostPath: hostPath === undefined ? undefined : reqString(hostPath, 'path', [...volumePath, 'hostPath']),
      path: volumePath,
    };
  });
  return {
    path,
    os: os === undefined ? undefined : optString(os, 'name', [...path, 'os']),
    securityContext: readSecurityContext(spec, path),
    containers,
    volumes,
    spec,
    annotations,
    annotationsPath: [...path.slice(0, -1), 'metadata', 'annotations'],
    hasSecurityContext: optObject(spec, 'securityContext', path) !== undefined,
  };
}

/** Counted before any container is read, so an oversized pod costs a few length reads. */
function checkPodLimits(
  spec: JsonObject,
  path: FieldPath,
  lists: readonly { list: ContainerList; items: readonly unknown[] }[],
): void {
  let containers = 0;
  let ports = 0;
  for (const { list, items } of lists) {
    containers += items.length;
    if (containers > POD_LIMITS.containers) {
      overLimit(
        [...path, list],
        `brings the pod to ${containers} containers: Portcullis judges at most ${POD_LIMITS.containers} in one pod (init, regular and ephemeral together)`,
      );
    }
  }
  const volumes = optList(spec, 'volumes', path);
  if (volumes.length > POD_LIMITS.volumes) {
    overLimit(
      [...path, 'volumes'],
      `holds ${volumes.length} volumes: Portcullis judges at most ${POD_LIMITS.volumes} in one pod`,
    );
  }
  for (const { list, items } of lists) {
    items.forEach((raw, index) => {
      // Only counted: no check reads ports, so a malformed list here is not this reader's to refuse.
      const containerPorts: unknown = isObject(raw) ? raw['ports'] : undefined;
      if (Array.isArray(containerPorts)) ports += containerPorts.length;
      if (ports > POD_LIMITS.ports) {
        overLimit(
          [...path, list, index, 'ports'],
          `brings the pod to ${ports} ports: Portcullis judges at most ${POD_LIMITS.ports} in one pod`,
        );
      }
      const mounts: unknown = isObject(raw) ? raw['volumeMounts'] : undefined;
      if (Array.isArray(mounts) && mounts.length > POD_LIMITS.volumeMounts) {
        overLimit(
          [...path, list, index, 'volumeMounts'],
          `holds ${mounts.length} volume mounts: Portcullis judges at most ${POD_LIMITS.volumeMounts} in one container`,
        );
      }
    });
  }
}

function readContainer(raw: unknown, list: ContainerList, path: FieldPath): ContainerView {
  const container = asObject(raw, path);
  const volumeMounts = optList(container, 'volumeMounts', path).map((rawMount, index) => {
    const mountPath = [...path, 'volumeMounts', index];
    const mount = asObject(rawMount, mountPath);
    return {
      name: optString(mount, 'name', mountPath) ?? '',
      readOnly: optBoolean(mount, 'readOnly', mountPath) ?? false,
      path: mountPath,
    };
  });
  return {
    list,
    name: optString(container, 'name', path) ?? '',
    image: optString(container, 'image', path),
    securityContext: readSecurityContext(container, path),
    volumeMounts,
    path,
    raw: container,
  };
}

function readSecurityContext(parent: JsonObject, parentPath: FieldPath): SecurityContextView {
  const path = [...parentPath, 'securityContext'];
  const sc = optObject(parent, 'securityContext', parentPath);
  if (sc === undefined)
    return { privileged: undefined, hostProcess: undefined, seccompProfileType: undefined };
  const windows = optObject(sc, 'windowsOptions', path);
  const seccomp = optObject(sc, 'seccompProfile', path);
  return {
    privileged: optBoolean(sc, 'privileged', path),
    hostProcess:
      windows === undefined ? undefined : optBoolean(windows, 'hostProcess', [...path, 'windowsOptions']),
    seccompProfileType:
      seccomp === undefined ? undefined : optString(seccomp, 'type', [...path, 'seccompProfile']),
  };
}

/**
 * Whether the pod runs in a user namespace of its own (`spec.hostUsers: false`), where UID 0 in a
 * container is an unprivileged user on the node: the Pod Security Standards relax some controls
 * for it (pod-security-admission's relaxPolicyForUserNamespacePod). A wrong type fails closed.
 */
export function inUserNamespace(pod: PodView): boolean {
  return optBoolean(pod.spec, 'hostUsers', pod.path) === false;
}
