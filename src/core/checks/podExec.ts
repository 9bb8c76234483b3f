/*
 * Check: podExec
 *
 * `kubectl exec` into a pod runs anything its image holds with the pod's service account token at
 * hand; `attach` joins the main process's terminal; `port-forward` reaches its ports past every
 * NetworkPolicy. Bastion-style audits ask who may, what they may run, and that every try is on record.
 *
 * Objects: CONNECT on pods/exec (PodExecOptions), pods/attach (PodAttachOptions) and
 * pods/portforward (PodPortForwardOptions). Every other CONNECT (nodes/proxy, services/proxy,
 * pods/proxy) is not judged.
 * Fields read: command[] (exec), container, stdin, tty; the request's namespace, name and userInfo;
 * with `podSelector`, the pod's labels from EvaluationContext.connectPod.
 * Denied, each reason its own finding, for the subresources in `subresources` only:
 * - a user that is not in `users` and in none of `groups`, when either is given (globs, `*` any run);
 * - with `podSelector`, a pod without every one of its labels, or whose labels are unknown (the
 *   lookup failed, or nobody looked: `portcullis check` has no cluster);
 * - with `allowInteractive: false`, a session with both stdin and tty (exec and attach);
 * - exec only: a command line matching a `denyCommands` pattern (the first one is cited), or, when
 *   `allowCommands` is given, one matching none of its patterns. The command line is the argv joined
 *   by spaces, each argument that is empty or holds anything but `A-Za-z0-9_@%+=:,./-` single-quoted
 *   (`sh -c 'cat /etc/x'`); a pattern matches the whole line, `*` any run of characters (spaces and
 *   quotes included), everything else literally and case-sensitively.
 * Commands typed inside an interactive shell are never seen: deny patterns catch the first command
 * line only. The boundary is `allowCommands` with `allowInteractive: false`, or who may at all.
 * Versions: v1.0.
 * Params: subresources (default [exec, attach, portforward]); users, groups (globs; default anyone);
 * allowInteractive (default true); denyCommands (globs, default none); allowCommands (globs, default
 * any command); podSelector: {matchLabels: {key: value}} (default none).
 */

import { defineCheck, type Finding } from '../check.js';
import {
  CONNECT_SUBRESOURCES,
  CONNECT_TARGET,
  describeSession,
  type ConnectSubresource,
  type ConnectView,
} from '../connect.js';
import { compileFirstMatch, compileGlobs } from '../glob.js';
import type { PodLookup, UserInfo } from '../types.js';

interface Params {
  subresources: ConnectSubresource[];
  users?: string[];
  groups?: string[];
  allowInteractive: boolean;
  denyCommands: string[];
  allowCommands?: string[];
  podSelector?: { matchLabels: Record<string, string> };
}

const globs = { type: 'array', items: { type: 'string', minLength: 1 } } as const;

export const podExec = defineCheck<Params, ConnectView>({
  id: 'podExec',
  target: CONNECT_TARGET,
  summary:
    'kubectl exec, attach and port-forward only by allowed users and groups, into allowed pods, with allowed commands.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      subresources: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        default: [...CONNECT_SUBRESOURCES],
        items: { enum: [...CONNECT_SUBRESOURCES] },
      },
      users: globs,
      groups: globs,
      allowInteractive: { type: 'boolean', default: true },
      denyCommands: { ...globs, default: [] },
      allowCommands: globs,
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
        return (session, { request, context }) => {
          if (!subresources.has(session.subresource)) return [];
          const findings: Finding[] = [];
          const say = (path: Finding['path'], reason: string): void => {
            findings.push({ path, message: `${describeSession(session)}: ${reason}` });
          };
          if (restrictsWho && !isAllowed(request.userInfo, user, group)) {
            say(
              [],
              `user ${JSON.stringify(request.userInfo.username ?? '')} is not among the allowed users and groups`,
            );
          }
          if (selector.length > 0) {
            const reason = selectorReason(selector, context.connectPod);
            if (reason !== undefined) say([], reason);
          }
          if (!params.allowInteractive && session.stdin && session.tty) {
            say(['tty'], 'interactive sessions (stdin and tty) are not allowed');
          }
          if (session.subresource === 'exec') {
            const pattern = denied(session.commandLine);
            if (pattern !== undefined) {
              say(['command'], `command matches ${JSON.stringify(pattern)}`);
            } else if (allowed !== undefined && allowed(session.commandLine) === undefined) {
              say(['command'], 'command matches none of allowCommands');
            }
          }
          return findings;
        };
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
