/*
 * Check: podExec
 *
 * `kubectl exec` into a pod runs anything its image holds with the pod's service account token at
 * hand; `attach` joins the main process's terminal; `port-forward` reaches its ports past every
 * NetworkPolicy; `kubectl debug` adds a container of any image to the pod, sharing a container's
 * processes and file system (`--target`: /proc/1/root/…) and able to mount the pod's volumes.
 * Bastion-style audits ask who may, what they may run, and that every try is on record.
 *
 * Objects: CONNECT on pods/exec (PodExecOptions), pods/attach (PodAttachOptions) and
 * pods/portforward (PodPortForwardOptions); UPDATE of pods/ephemeralcontainers (`debug`: the Pod),
 * each ephemeral container it adds (absent by name from oldObject) judged as a session of its own.
 * Every other CONNECT (nodes/proxy, services/proxy, pods/proxy) is not judged.
 * Fields read: command[] (exec), container, stdin, tty; debug: spec.ephemeralContainers[] name,
 * image, command[], args[], stdin, tty, volumeMounts[], env[].valueFrom.secretKeyRef and
 * fileKeyRef, envFrom[].secretRef and prefix, spec.volumes[] (which hold secrets, tokens or private keys),
 * oldObject.spec.ephemeralContainers[].name, the pod's labels; the request's namespace,
 * name and userInfo; with `podSelector` on a CONNECT, the pod's labels from EvaluationContext.connectPod.
 * Denied, each reason its own finding, for the subresources in `subresources` only:
 * - a user that is not in `users` and in none of `groups`, when either is given (globs, `*` any run);
 * - with `podSelector`, a pod without every one of its labels, or whose labels are unknown (the
 *   lookup failed, or nobody looked: `portcullis check` has no cluster);
 * - with `allowInteractive: false`, a session with both stdin and tty (exec, attach and debug);
 * - exec and debug: a command line matching a `denyCommands` pattern (the first one is cited), or,
 *   when `allowCommands` is given, one matching none of its patterns. The command line is the argv
 *   (debug: command then args) joined by spaces, each argument that is empty or holds anything but
 *   `A-Za-z0-9_@%+=:,./-` single-quoted (`sh -c 'cat /etc/x'`); a pattern matches the whole line, `*`
 *   any run of characters (spaces and quotes included), everything else literally and
 *   case-sensitively. A debug container without `command` runs its image's entrypoint, which
 *   admission cannot see: `denyCommands` are matched against its args alone (the command itself for
 *   an image without an ENTRYPOINT, such as busybox), and `allowCommands` denies it (fail closed);
 * - debug, with `allowSecrets: false`, each its own finding: mounting a pod volume that holds
 *   secret material (`secret`; `projected` with a secret, serviceAccountToken or podCertificate
 *   source; any inline `csi` volume), and taking a Secret into the environment
 *   (`env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`, a `fileKeyRef` into such a volume).
 *   Patching pods/ephemeralcontainers needs no right to read secrets: the kubelet resolves them,
 *   and the container prints them. configMapKeyRef, fieldRef, resourceFieldRef and other
 *   fileKeyRefs are not secret. The former name `allowSecretMounts` is refused, naming this one
 *   (it did not cover the environment).
 * Commands typed inside an interactive shell are never seen: deny patterns catch the first command
 * line only. The boundary is `allowCommands` with `allowInteractive: false`, or who may at all.
 * Versions: v1.0.
 * Params: subresources (default [exec, attach, portforward, debug]); users, groups (globs; default
 * anyone); allowInteractive (default true); denyCommands (globs, default none); allowCommands (globs,
 * default any command); allowSecrets (default true); podSelector: {matchLabels: {key: value}}
 * (default none).
 */

import { defineCheck, type Finding } from '../check.js';
import {
  describeSession,
  SESSION_KINDS,
  SESSION_TARGET,
  type SessionKind,
  type SecretEnv,
  type SessionView,
} from '../connect.js';
import { compileFirstMatch, compileGlobs } from '../glob.js';
import type { FieldPath, PodLookup, UserInfo } from '../types.js';

interface Params {
  subresources: SessionKind[];
  users?: string[];
  groups?: string[];
  allowInteractive: boolean;
  denyCommands: string[];
  allowCommands?: string[];
  allowSecrets: boolean;
  /** The name allowSecrets had before it covered env and envFrom: refused, naming the new one. */
  allowSecretMounts?: unknown;
  podSelector?: { matchLabels: Record<string, string> };
}

const globs = { type: 'array', items: { type: 'string', minLength: 1 } } as const;

export const podExec = defineCheck<Params, readonly SessionView[]>({
  id: 'podExec',
  target: SESSION_TARGET,
  summary:
    'kubectl exec, attach, port-forward and debug only by allowed users and groups, into allowed pods, with allowed commands.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      subresources: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        default: [...SESSION_KINDS],
        items: { enum: [...SESSION_KINDS] },
      },
      users: globs,
      groups: globs,
      allowInteractive: { type: 'boolean', default: true },
      denyCommands: { ...globs, default: [] },
      allowCommands: globs,
      allowSecrets: { type: 'boolean', default: true },
      // Any value: `validate` refuses it with the name to write instead of "unknown field".
      allowSecretMounts: {},
      podSelector: {
        type: 'object',
        additionalProperties: false,
        required: ['matchLabels'],
        properties: {
          matchLabels: {
            type: 'object',
            minProperties: 1,
            additionalProperties: { type: 'string' },
          },
        },
      },
    },
  },
  validate: (params) =>
    params.allowSecretMounts === undefined
      ? []
      : [
          {
            path: ['allowSecretMounts'],
            message: 'renamed: write allowSecrets, which also refuses env and envFrom taken from a secret',
          },
        ],
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: (params) => {
        const subresources = new Set(params.subresources);
        const restrictsWho = params.users !== undefined || params.groups !== undefined;
        const user = compileGlobs(params.users ?? []);
        const group = compileGlobs(params.groups ?? []);
        const denied = compileFirstMatch(params.denyCommands);
        const allowed =
          params.allowCommands === undefined ? undefined : compileFirstMatch(params.allowCommands);
        const selector = Object.entries(params.podSelector?.matchLabels ?? {});
        const judge = (
          session: SessionView,
          input: { user: UserInfo; pod: PodLookup | undefined },
        ): Finding[] => {
          if (!subresources.has(session.subresource)) return [];
          const findings: Finding[] = [];
          // A debug container's findings point into the pod, at the container; a CONNECT's into its options.
          const root: FieldPath = session.subresource === 'debug' ? session.path : [];
          const say = (path: FieldPath, reason: string): void => {
            findings.push({ path: [...root, ...path], message: `${describeSession(session)}: ${reason}` });
          };
          if (restrictsWho && !isAllowed(input.user, user, group)) {
            say(
              [],
              `user ${JSON.stringify(input.user.username ?? '')} is not among the allowed users and groups`,
            );
          }
          if (selector.length > 0) {
            const reason = selectorReason(selector, input.pod);
            if (reason !== undefined) say([], reason);
          }
          if (!params.allowInteractive && session.stdin && session.tty) {
            say(['tty'], 'interactive sessions (stdin and tty) are not allowed');
          }
          if (session.subresource === 'exec' || session.subresource === 'debug') {
            const entrypoint = session.subresource === 'debug' && session.entrypoint;
            const commandPath = entrypoint && session.command.length > 0 ? ['args'] : ['command'];
            const pattern = denied(session.commandLine);
            if (pattern !== undefined) {
              const what = !entrypoint
                ? 'command matches'
                : session.command.length > 0
                  ? 'args match'
                  : 'no command, and the empty command line matches';
              say(commandPath, `${what} ${JSON.stringify(pattern)}`);
            } else if (allowed !== undefined && entrypoint) {
              say(
                ['command'],
                "no command: its image's entrypoint runs, which admission cannot see, so it matches none of allowCommands",
              );
            } else if (allowed !== undefined && allowed(session.commandLine) === undefined) {
              say(['command'], 'command matches none of allowCommands');
            }
          }
          if (session.subresource === 'debug' && !params.allowSecrets) {
            const debug = describeSession(session);
            for (const mount of session.secretMounts) {
              findings.push({
                path: mount.path,
                message: `${debug}: mounts volume ${JSON.stringify(mount.volume)} (${mount.holds}) at ${JSON.stringify(mount.mountPath)}`,
              });
            }
            for (const env of session.secretEnv)
              findings.push({ path: env.path, message: `${debug}: ${secretEnvReason(env)}` });
          }
          return findings;
        };
        return (sessions, { request, context }) =>
          sessions.flatMap((session) =>
            judge(session, {
              user: request.userInfo,
              // A debug request carries the pod; a CONNECT's pod is what the caller looked up.
              pod:
                session.subresource === 'debug'
                  ? { ok: true, labels: session.podLabels }
                  : context.connectPod,
            }),
          );
      },
    },
  ],
});

function isAllowed(
  userInfo: UserInfo,
  user: (name: string) => boolean,
  group: (name: string) => boolean,
): boolean {
  const username = userInfo.username ?? '';
  return (username !== '' && user(username)) || (userInfo.groups ?? []).some(group);
}

/** Why the pod does not pass `podSelector`, or undefined when it does. */
function selectorReason(
  selector: readonly (readonly [string, string])[],
  pod: PodLookup | undefined,
): string | undefined {
  const wanted = selector.map(([key, value]) => `${key}=${value}`).join(', ');
  if (pod === undefined)
    return `the pod's labels are unknown (not looked up), so it is not known to carry ${wanted}`;
  if (!pod.ok) return `the pod's labels are unknown (${pod.error}), so it is not known to carry ${wanted}`;
  const missing = selector.filter(
    ([key, value]) => !Object.hasOwn(pod.labels, key) || pod.labels[key] !== value,
  );
  if (missing.length === 0) return undefined;
  return `the pod is not labelled ${missing.map(([key, value]) => `${key}=${value}`).join(', ')}`;
}

/** `env "DB_PASSWORD" takes key "password" of secret "db"`, `envFrom takes every key of secret "db"`. */
function secretEnvReason(env: SecretEnv): string {
  switch (env.from) {
    case 'env':
      return `env ${JSON.stringify(env.variable)} takes key ${JSON.stringify(env.key)} of secret ${JSON.stringify(env.secret)}`;
    case 'envFrom': {
      const prefix = env.prefix === '' ? '' : ` (prefixed ${JSON.stringify(env.prefix)})`;
      return `envFrom takes every key of secret ${JSON.stringify(env.secret)}${prefix}`;
    }
    case 'file':
      return `env ${JSON.stringify(env.variable)} takes key ${JSON.stringify(env.key)} of file ${JSON.stringify(env.file)} in volume ${JSON.stringify(env.volume)} (${env.holds})`;
  }
}
