// Reads CONNECT requests into a pod: `kubectl exec` (pods/exec, a PodExecOptions), `kubectl attach`
// (pods/attach, PodAttachOptions) and `kubectl port-forward` (pods/portforward,
// PodPortForwardOptions; its ports travel inside the stream). The request names the pod but does not
// carry it: `oldObject` is null and `object` is the options, which is all a check can judge unless
// the caller looked the pod up (EvaluationContext.connectPod). kubectl tries WebSocket first and
// SPDY when refused, so one `kubectl exec` arrives twice, as two identical requests: both are judged
// and audited. Commands typed inside an interactive shell travel in the stream: only the first
// command line is ever seen here.

import { rulesFor } from './evaluate.js';
import { asObject, isObject, optBoolean, optString, optStringList, readObject } from './read.js';
import type { CompiledRuleSet } from './ruleset.js';
import { defineTarget } from './target.js';
import type { AdmissionRequest } from './types.js';

export const CONNECT_SUBRESOURCES = ['exec', 'attach', 'portforward'] as const;
export type ConnectSubresource = (typeof CONNECT_SUBRESOURCES)[number];

export interface ConnectView {
  subresource: ConnectSubresource;
  namespace: string;
  /** The pod's name, from the request (the pod is not in it). */
  pod: string;
  /** As the client sent it; absent when the client let the API server pick the only container. */
  container: string | undefined;
  /** exec only: the argv; empty for attach and port-forward. */
  command: readonly string[];
  /** exec only: `command` joined as a POSIX shell would read it back (see `formatCommandLine`). */
  commandLine: string;
  stdin: boolean;
  tty: boolean;
}

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

/** CONNECT on pods/exec, pods/attach and pods/portforward. Every other CONNECT stays unjudged. */
export const CONNECT_TARGET = defineTarget<ConnectView>({
  id: 'connect',
  operations: ['CONNECT'],
  accepts: (request) => connectSubresource(request) !== undefined,
  read: (object, request) => readConnect(object, request),
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

/** `shop/web`. */
export function podRef(view: ConnectView): string {
  return view.namespace === '' ? view.pod : `${view.namespace}/${view.pod}`;
}

/** How long a command line may be in a message; the whole line is still what patterns match. */
export const MESSAGE_COMMAND_MAX = 256;

export function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/**
 * What a message calls the session: `exec "ls -l /tmp" into pod shop/web container app`,
 * `attach to pod shop/web container app`, `port-forward to pod shop/web`.
 */
export function describeSession(view: ConnectView): string {
  const container = view.container === undefined ? '' : ` container ${view.container}`;
  switch (view.subresource) {
    case 'exec':
      return `exec ${JSON.stringify(shorten(view.commandLine, MESSAGE_COMMAND_MAX))} into pod ${podRef(view)}${container}`;
    case 'attach':
      return `attach to pod ${podRef(view)}${container}`;
    case 'portforward':
      return `port-forward to pod ${podRef(view)}`;
  }
}

/**
 * The session a CONNECT request opens, for the audit record: what `CONNECT_TARGET` reads, or
 * undefined when the request is not a CONNECT into a pod or its options cannot be read (the
 * decision then says it was malformed).
 */
export function connectSession(request: AdmissionRequest): ConnectView | undefined {
  if (!CONNECT_TARGET.accepts(request)) return undefined;
  const read = readObject(() => readConnect(request.object, request));
  return read.ok ? read.value : undefined;
}

/**
 * Whether a rule that judges this request wants the labels of the pod it goes into
 * (`podSelector`): the caller then looks the pod up and passes `EvaluationContext.connectPod`.
 */
export function wantsConnectPod(request: AdmissionRequest, ruleset: CompiledRuleSet): boolean {
  if (!CONNECT_TARGET.accepts(request)) return false;
  return rulesFor(request, ruleset).some(
    (rule) =>
      rule.compiled.target === CONNECT_TARGET &&
      isObject(rule.compiled.params) &&
      rule.compiled.params['podSelector'] !== undefined,
  );
}
