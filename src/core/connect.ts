// Reads the sessions a request opens into a pod, for podExec. Three are CONNECT requests:
// `kubectl exec` (pods/exec, a PodExecOptions), `kubectl attach` (pods/attach, PodAttachOptions) and
// `kubectl port-forward` (pods/portforward, PodPortForwardOptions; its ports travel inside the
// stream). Such a request names the pod but does not carry it: `oldObject` is null and `object` is
// the options, which is all a check can judge unless the caller looked the pod up
// (EvaluationContext.connectPod). kubectl tries WebSocket first and SPDY when refused, so one
// `kubectl exec` arrives twice, as two identical requests: both are judged and audited. Commands
// typed inside an interactive shell travel in the stream: only the first command line is ever seen.
//
// The fourth is the door beside exec: `kubectl debug` adds an ephemeral container to a running pod
// (an UPDATE of pods/ephemeralcontainers, the Pod as object and as oldObject), whose command runs
// in the pod with `--target` sharing a container's processes and file system (/proc/1/root/…) and
// any of the pod's volumes mountable. Each ephemeral container the request adds (in object, absent
// by name from oldObject) is a session like an exec: the ones already there were judged when added,
// and the API server refuses changing or removing them.
//
// What a debug container can take that its caller may not read (patching pods/ephemeralcontainers
// needs no get on secrets): the pod's volumes that hold secrets, mounted anywhere, and the
// namespace's Secrets through its environment (`env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`,
// a `fileKeyRef` into a secret volume), which the kubelet resolves with the node's rights and the
// container prints. Volumes are the pod's and cannot change here, so a secret reaches a debug
// container through volumeMounts and env only (or through the target's files and environment,
// /proc/1/root/… and /proc/1/environ, which is denyCommands' part).

import { rulesFor } from './evaluate.js';
import {
  asObject,
  isObject,
  optBoolean,
  optList,
  optObject,
  optString,
  optStringList,
  readObject,
  type JsonObject,
} from './read.js';
import type { CompiledRuleSet } from './ruleset.js';
import { defineTarget } from './target.js';
import type { AdmissionRequest, FieldPath } from './types.js';

export const CONNECT_SUBRESOURCES = ['exec', 'attach', 'portforward'] as const;
export type ConnectSubresource = (typeof CONNECT_SUBRESOURCES)[number];

/** What podExec's `subresources` can name: the three CONNECTs and `debug` (pods/ephemeralcontainers). */
export const SESSION_KINDS = [...CONNECT_SUBRESOURCES, 'debug'] as const;
export type SessionKind = (typeof SESSION_KINDS)[number];

interface SessionBase {
  namespace: string;
  /** The pod's name, from the request. */
  pod: string;
  /** exec and debug: the argv (debug: command then args); empty for attach and port-forward. */
  command: readonly string[];
  /** `command` joined as a POSIX shell would read it back (see `formatCommandLine`). */
  commandLine: string;
  stdin: boolean;
  tty: boolean;
}

export interface ConnectView extends SessionBase {
  subresource: ConnectSubresource;
  /** As the client sent it; absent when the client let the API server pick the only container. */
  container: string | undefined;
}

/** A volume of the pod that holds a secret, token or private key, mounted by a debug container. */
export interface SecretMount {
  volume: string;
  /** What the volume holds, as a message says it: `a secret or service-account token`. */
  holds: string;
  mountPath: string;
  /** The volumeMount's path from the object root. */
  path: FieldPath;
}

/** Environment a debug container takes from a Secret. */
export type SecretEnv =
  /** `env[].valueFrom.secretKeyRef`: one key, as one variable. */
  | { from: 'env'; variable: string; secret: string; key: string; path: FieldPath }
  /** `envFrom[].secretRef`: every key of the Secret, each a variable (after `prefix`). */
  | { from: 'envFrom'; secret: string; prefix: string; path: FieldPath }
  /** `env[].valueFrom.fileKeyRef` into a pod volume that holds secret material (`holds`). */
  | {
      from: 'file';
      variable: string;
      volume: string;
      holds: string;
      file: string;
      key: string;
      path: FieldPath;
    };

/** One ephemeral container a pods/ephemeralcontainers UPDATE adds (`kubectl debug`). */
export interface DebugView extends SessionBase {
  subresource: 'debug';
  container: string;
  image: string | undefined;
  /** `--target`: the container whose processes (and, through /proc, file system) it shares. */
  targetContainer: string | undefined;
  /**
   * True when the container sets no `command`: its image's entrypoint runs, which admission cannot
   * see. `command` and `commandLine` then hold the `args` alone (for an image without an
   * ENTRYPOINT, such as busybox, the args are the command).
   */
  entrypoint: boolean;
  /** Path of the ephemeral container from the object root (`spec.ephemeralContainers.N`). */
  path: FieldPath;
  secretMounts: readonly SecretMount[];
  secretEnv: readonly SecretEnv[];
  /** The pod's labels, from the stored pod (the request carries it, unlike a CONNECT's). */
  podLabels: Readonly<Record<string, string>>;
}

export type SessionView = ConnectView | DebugView;

function isConnectSubresource(value: string): value is ConnectSubresource {
  return (CONNECT_SUBRESOURCES as readonly string[]).includes(value);
}

/** The subresource of a CONNECT into a pod, or undefined for any other request (nodes/proxy, pods/proxy, …). */
function connectSubresource(request: AdmissionRequest): ConnectSubresource | undefined {
  if (request.operation !== 'CONNECT') return undefined;
  if (request.resource.group !== '' || request.resource.resource !== 'pods') return undefined;
  const subresource = request.subResource ?? '';
  return isConnectSubresource(subresource) ? subresource : undefined;
}

/** `kubectl debug`: an UPDATE of pods/ephemeralcontainers. */
function isEphemeralContainersUpdate(request: AdmissionRequest): boolean {
  return (
    request.operation === 'UPDATE' &&
    request.resource.group === '' &&
    request.resource.resource === 'pods' &&
    request.subResource === 'ephemeralcontainers'
  );
}

/**
 * The sessions a request opens into a pod: one for a CONNECT on pods/exec, pods/attach and
 * pods/portforward; one per ephemeral container added by an UPDATE of pods/ephemeralcontainers
 * (none when it adds none). Every other request (other CONNECTs, other pod writes) is not read.
 */
export const SESSION_TARGET = defineTarget<readonly SessionView[]>({
  id: 'session',
  operations: ['CONNECT', 'UPDATE'],
  accepts: (request) => connectSubresource(request) !== undefined || isEphemeralContainersUpdate(request),
  read: (object, request) =>
    isEphemeralContainersUpdate(request)
      ? readDebugSessions(object, request)
      : [readConnect(object, request)],
});

export function readConnect(object: unknown, request: AdmissionRequest): ConnectView {
  const subresource = connectSubresource(request);
  if (subresource === undefined) throw new Error('readConnect: not a CONNECT into a pod');
  const options = asObject(object, []);
  const command = subresource === 'exec' ? optStringList(options, 'command', []) : [];
  return {
    subresource,
    namespace: request.namespace ?? '',
    pod: request.name ?? '',
    container: optString(options, 'container', []),
    command,
    commandLine: formatCommandLine(command),
    stdin: optBoolean(options, 'stdin', []) ?? false,
    tty: optBoolean(options, 'tty', []) ?? false,
  };
}

/** The ephemeral containers in `object` whose names `oldObject` does not have, as sessions. */
function readDebugSessions(object: unknown, request: AdmissionRequest): DebugView[] {
  const pod = asObject(object, []);
  const spec = asObject(pod['spec'], ['spec']);
  const existing = existingEphemeralNames(request.oldObject);
  const volumes = secretVolumes(spec);
  const labels = podLabels(request.oldObject ?? object);
  const sessions: DebugView[] = [];
  optList(spec, 'ephemeralContainers', ['spec']).forEach((raw, index) => {
    const path = ['spec', 'ephemeralContainers', index];
    const container = asObject(raw, path);
    const name = optString(container, 'name', path) ?? '';
    if (existing.has(name)) return;
    const command = optStringList(container, 'command', path);
    const args = optStringList(container, 'args', path);
    const argv = [...command, ...args];
    const secretMounts: SecretMount[] = [];
    optList(container, 'volumeMounts', path).forEach((mountRaw, m) => {
      const mountPath = [...path, 'volumeMounts', m];
      const mount = asObject(mountRaw, mountPath);
      const volume = optString(mount, 'name', mountPath) ?? '';
      const holds = volumes.get(volume);
      if (holds !== undefined)
        secretMounts.push({
          volume,
          holds,
          mountPath: optString(mount, 'mountPath', mountPath) ?? '',
          path: mountPath,
        });
    });
    sessions.push({
      subresource: 'debug',
      namespace: request.namespace ?? '',
      pod: request.name ?? '',
      container: name,
      image: optString(container, 'image', path),
      targetContainer: optString(container, 'targetContainerName', path),
      // An empty command is an unset one: Kubernetes runs the entrypoint either way.
      entrypoint: command.length === 0,
      command: argv,
      commandLine: formatCommandLine(argv),
      stdin: optBoolean(container, 'stdin', path) ?? false,
      tty: optBoolean(container, 'tty', path) ?? false,
      path,
      secretMounts,
      secretEnv: secretEnv(container, path, volumes),
      podLabels: labels,
    });
  });
  return sessions;
}

/** The names of the ephemeral containers the pod had before the request (read as `oldObject.…`). */
function existingEphemeralNames(oldObject: unknown): ReadonlySet<string> {
  if (oldObject === undefined || oldObject === null) return new Set();
  const pod = asObject(oldObject, ['oldObject']);
  const spec = optObject(pod, 'spec', ['oldObject']);
  if (spec === undefined) return new Set();
  return new Set(
    optList(spec, 'ephemeralContainers', ['oldObject', 'spec']).map((raw, index) => {
      const path = ['oldObject', 'spec', 'ephemeralContainers', index];
      return optString(asObject(raw, path), 'name', path) ?? '';
    }),
  );
}

const SECRET_OR_TOKEN = 'a secret or service-account token';

/**
 * The pod's volumes that hold secret material, each with what it holds: `secret`; `projected` with
 * a `secret` or `serviceAccountToken` source (the kube-api-access-… volume every pod gets) or a
 * `podCertificate` one (a private key the kubelet makes, and the certificate a signer issued to the
 * pod); and every inline `csi` volume, since admission cannot tell what a driver writes there and
 * the common ones write secrets (Secrets Store CSI driver) or private keys (cert-manager's).
 */
function secretVolumes(spec: JsonObject): ReadonlyMap<string, string> {
  const volumes = new Map<string, string>();
  optList(spec, 'volumes', ['spec']).forEach((raw, index) => {
    const path = ['spec', 'volumes', index];
    const volume = asObject(raw, path);
    const name = optString(volume, 'name', path) ?? '';
    if (optObject(volume, 'secret', path) !== undefined) volumes.set(name, SECRET_OR_TOKEN);
    const csi = optObject(volume, 'csi', path);
    if (csi !== undefined) {
      const driver = optString(csi, 'driver', [...path, 'csi']) ?? '';
      volumes.set(name, `a CSI volume of driver ${JSON.stringify(driver)}, which may hold secrets`);
    }
    const projected = optObject(volume, 'projected', path);
    if (projected === undefined) return;
    const sources = optList(projected, 'sources', [...path, 'projected']);
    sources.forEach((sourceRaw, s) => {
      const source = asObject(sourceRaw, [...path, 'projected', 'sources', s]);
      if (source['secret'] !== undefined || source['serviceAccountToken'] !== undefined)
        volumes.set(name, SECRET_OR_TOKEN);
      else if (source['podCertificate'] !== undefined && !volumes.has(name))
        volumes.set(name, "a pod certificate's private key");
    });
  });
  return volumes;
}

/**
 * What the container's environment takes from Secrets: each `env[].valueFrom.secretKeyRef`, each
 * `envFrom[].secretRef`, and each `env[].valueFrom.fileKeyRef` (EnvFiles) that reads a volume in
 * `volumes` (meant for an emptyDir an init container wrote; should the API server ever take a
 * secret volume there, it is the same door). ConfigMaps and the downward API (fieldRef,
 * resourceFieldRef) are not secret material.
 */
function secretEnv(
  container: JsonObject,
  path: FieldPath,
  volumes: ReadonlyMap<string, string>,
): SecretEnv[] {
  const found: SecretEnv[] = [];
  optList(container, 'env', path).forEach((raw, e) => {
    const envPath = [...path, 'env', e];
    const env = asObject(raw, envPath);
    const valueFrom = optObject(env, 'valueFrom', envPath);
    if (valueFrom === undefined) return;
    const variable = optString(env, 'name', envPath) ?? '';
    const filePath = [...envPath, 'valueFrom', 'fileKeyRef'];
    const fileRef = optObject(valueFrom, 'fileKeyRef', [...envPath, 'valueFrom']);
    if (fileRef !== undefined) {
      const volume = optString(fileRef, 'volumeName', filePath) ?? '';
      const holds = volumes.get(volume);
      if (holds !== undefined)
        found.push({
          from: 'file',
          variable,
          volume,
          holds,
          file: optString(fileRef, 'path', filePath) ?? '',
          key: optString(fileRef, 'key', filePath) ?? '',
          path: filePath,
        });
    }
    const refPath = [...envPath, 'valueFrom', 'secretKeyRef'];
    const ref = optObject(valueFrom, 'secretKeyRef', [...envPath, 'valueFrom']);
    if (ref === undefined) return;
    found.push({
      from: 'env',
      variable,
      secret: optString(ref, 'name', refPath) ?? '',
      key: optString(ref, 'key', refPath) ?? '',
      path: refPath,
    });
  });
  optList(container, 'envFrom', path).forEach((raw, e) => {
    const sourcePath = [...path, 'envFrom', e];
    const source = asObject(raw, sourcePath);
    const ref = optObject(source, 'secretRef', sourcePath);
    if (ref === undefined) return;
    const refPath = [...sourcePath, 'secretRef'];
    found.push({
      from: 'envFrom',
      secret: optString(ref, 'name', refPath) ?? '',
      prefix: optString(source, 'prefix', sourcePath) ?? '',
      path: refPath,
    });
  });
  return found;
}

function podLabels(object: unknown): Readonly<Record<string, string>> {
  if (!isObject(object)) return {};
  const metadata = isObject(object['metadata']) ? object['metadata'] : undefined;
  const labels = metadata === undefined ? undefined : metadata['labels'];
  if (!isObject(labels)) return {};
  const read: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) if (typeof value === 'string') read[key] = value;
  return read;
}

// Characters a POSIX shell never treats specially; anything else is single-quoted.
const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * The argv as one line a POSIX shell reads back into the same argv: arguments joined by one space,
 * each argument that is empty or holds anything but `A-Za-z0-9_@%+=:,./-` in single quotes, a
 * single quote inside written `'\''` (the rule of Python's shlex.quote). So `["sh", "-c", "cat
 * /etc/x"]` is `sh -c 'cat /etc/x'`: an argument boundary is never confused with a space inside one.
 */
export function formatCommandLine(argv: readonly string[]): string {
  return argv.map((arg) => (SHELL_SAFE.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/**
 * The command line as the audit record shows it: a debug container without `command` runs its
 * image's entrypoint, written `<entrypoint>` (a real argument `<entrypoint>` would be quoted).
 */
export function recordedCommandLine(view: SessionView): string {
  if (view.subresource !== 'debug' || !view.entrypoint) return view.commandLine;
  return view.commandLine === '' ? '<entrypoint>' : `<entrypoint> ${view.commandLine}`;
}

/** `shop/web`. */
export function podRef(view: SessionView): string {
  return view.namespace === '' ? view.pod : `${view.namespace}/${view.pod}`;
}

/** How long a command line may be in a message; the whole line is still what patterns match. */
export const MESSAGE_COMMAND_MAX = 256;

export function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/**
 * What a message calls the session: `exec "ls -l /tmp" into pod shop/web container app`,
 * `attach to pod shop/web container app`, `port-forward to pod shop/web`, `debug container "dbg"
 * (image busybox) into pod shop/web`.
 */
export function describeSession(view: SessionView): string {
  switch (view.subresource) {
    case 'exec':
      return `exec ${JSON.stringify(shorten(view.commandLine, MESSAGE_COMMAND_MAX))} into pod ${podRef(view)}${containerSuffix(view)}`;
    case 'attach':
      return `attach to pod ${podRef(view)}${containerSuffix(view)}`;
    case 'portforward':
      return `port-forward to pod ${podRef(view)}`;
    case 'debug': {
      const image = view.image === undefined ? '' : ` (image ${view.image})`;
      return `debug container ${JSON.stringify(view.container)}${image} into pod ${podRef(view)}`;
    }
  }
}

function containerSuffix(view: ConnectView): string {
  return view.container === undefined ? '' : ` container ${view.container}`;
}

/**
 * The session a CONNECT request opens, for the audit record: what `SESSION_TARGET` reads, or
 * undefined when the request is not a CONNECT into a pod or its options cannot be read (the
 * decision then says it was malformed).
 */
export function connectSession(request: AdmissionRequest): ConnectView | undefined {
  if (connectSubresource(request) === undefined) return undefined;
  const read = readObject(() => readConnect(request.object, request));
  return read.ok ? read.value : undefined;
}

/**
 * The sessions a request opens, for the audit record: the CONNECT's one, or each ephemeral
 * container a pods/ephemeralcontainers UPDATE adds; empty for any other request or an object that
 * cannot be read (the decision then says it was malformed).
 */
export function podSessions(request: AdmissionRequest): readonly SessionView[] {
  if (!SESSION_TARGET.accepts(request)) return [];
  const read = SESSION_TARGET.view(request);
  return read.ok ? read.value : [];
}

/**
 * Whether a rule that judges this request wants the labels of the pod it goes into
 * (`podSelector`): the caller then looks the pod up and passes `EvaluationContext.connectPod`.
 * A pods/ephemeralcontainers UPDATE carries the pod: nothing to look up.
 */
export function wantsConnectPod(request: AdmissionRequest, ruleset: CompiledRuleSet): boolean {
  if (connectSubresource(request) === undefined) return false;
  return rulesFor(request, ruleset).some(
    (rule) =>
      rule.compiled.target === SESSION_TARGET &&
      isObject(rule.compiled.params) &&
      rule.compiled.params['podSelector'] !== undefined,
  );
}
