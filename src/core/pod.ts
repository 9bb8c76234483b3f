// Finds the pod spec inside any object that carries one, and reads the fields the pod checks use.
// Every container list (init, regular, ephemeral) is read here once, so no check walks a pod on its
// own and none can forget a list (the pod-security-admission visitor does the same).

import {
  asObject,
  optBoolean,
  optList,
  optObject,
  optString,
  readObject,
  reqString,
  type JsonObject,
  type Malformed,
} from './read.js';
import type { FieldPath } from './types.js';

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
}

/** How a message names a container: `container "app"`, `initContainer "setup"`, … */
export function containerLabel(c: ContainerView): string {
  return `${c.list.slice(0, -1)} "${c.name}"`;
}

export function readPod(
  object: unknown,
  specPath: readonly string[],
): { ok: true; value: PodView } | { ok: false; error: Malformed } {
  return readObject(() => {
    let node = asObject(object, []);
    specPath.forEach((key, i) => {
      node = asObject(node[key], specPath.slice(0, i + 1));
    });
    return readPodSpec(node, specPath);
  });
}

function readPodSpec(spec: JsonObject, path: FieldPath): PodView {
  const os = optObject(spec, 'os', path);
  const containers: ContainerView[] = [];
  for (const list of CONTAINER_LISTS) {
    optList(spec, list, path).forEach((raw, index) => {
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
  };
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
