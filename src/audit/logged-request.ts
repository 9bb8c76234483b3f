// An audit event turned back into the admission request it was, or the reason it cannot be: the
// API server logs every request, and only some of them carry what admission saw. Nothing is guessed:
// an event without the object as sent is counted under its reason, never judged on a partial view.

import { createRequestFor } from '../admission/review.js';
import type { ApiResource } from '../admission/kinds.js';
import { isObject, type AdmissionRequest } from '../core/index.js';
import type { LoggedEvent } from './log-reader.js';

/** Why an event is not judged, in the order the reasons are tested. */
export type NotJudgedReason =
  /** Not the `ResponseComplete` stage: each request logs RequestReceived (and more) besides. */
  | 'stage'
  /** Reads, watches, deletes: admission judges creates and updates only. */
  | 'verb'
  /** A resource no rule judges. */
  | 'kind'
  /** The API server refused it (`responseStatus.code` >= 400): it never reached the cluster. */
  | 'refused'
  /** A PATCH (also server-side apply): the log has the patch, not the object admission saw. */
  | 'patch'
  /** Level Metadata (or a policy that omits bodies): no `requestObject` to judge. */
  | 'noBody';

export const NOT_JUDGED_REASONS: readonly NotJudgedReason[] = [
  'stage',
  'verb',
  'kind',
  'refused',
  'patch',
  'noBody',
];

export type LoggedRequest =
  | { judged: true; request: AdmissionRequest; resource: ApiResource }
  | { judged: false; reason: NotJudgedReason };

/** `group/resource` of an event's object, the key `judgedResources` is looked up by. */
export function resourceKey(group: string, resource: string): string {
  return `${group}/${resource}`;
}

const OPERATION_OF_VERB: Readonly<Record<string, 'CREATE' | 'UPDATE'>> = {
  create: 'CREATE',
  update: 'UPDATE',
};

/**
 * The request admission saw for `event`: the object from `requestObject`, the identity admission
 * judged (`impersonatedUser` when the caller impersonated, else `user`), namespace and name from
 * `objectRef` (the request path, which wins over the body), the operation from `verb`.
 */
export function loggedRequest(
  event: LoggedEvent,
  judgedResources: ReadonlyMap<string, ApiResource>,
): LoggedRequest {
  if (event.stage !== 'ResponseComplete') return { judged: false, reason: 'stage' };
  if (event.verb !== 'create' && event.verb !== 'update' && event.verb !== 'patch') {
    return { judged: false, reason: 'verb' };
  }
  const ref = event.objectRef;
  const resource =
    ref?.resource === undefined
      ? undefined
      : judgedResources.get(resourceKey(ref.apiGroup ?? '', ref.resource));
  if (ref === undefined || resource === undefined) return { judged: false, reason: 'kind' };
  if ((event.responseStatus?.code ?? 0) >= 400) return { judged: false, reason: 'refused' };
  const operation = OPERATION_OF_VERB[event.verb];
  if (operation === undefined) return { judged: false, reason: 'patch' };
  const body = event.requestObject;
  if (!isObject(body)) return { judged: false, reason: 'noBody' };

  // The API server fills apiVersion and kind from the path when a client leaves them out.
  const apiVersion =
    typeof body['apiVersion'] === 'string'
      ? body['apiVersion']
      : resource.group === ''
        ? (ref.apiVersion ?? resource.version)
        : `${resource.group}/${ref.apiVersion ?? resource.version}`;
  const kind = typeof body['kind'] === 'string' ? body['kind'] : resource.kind;
  const base = createRequestFor({ ...body, apiVersion, kind }, ref.namespace ?? '');
  const metadataName = base.name;
  const request: AdmissionRequest = {
    uid: event.auditID,
    kind: base.kind,
    resource: {
      group: resource.group,
      version: ref.apiVersion ?? base.resource.version,
      resource: resource.resource,
    },
    ...(ref.subresource === undefined || ref.subresource === '' ? {} : { subResource: ref.subresource }),
    ...(ref.name !== undefined && ref.name !== ''
      ? { name: ref.name }
      : metadataName === undefined
        ? {}
        : { name: metadataName }),
    ...(ref.namespace === undefined || ref.namespace === '' ? {} : { namespace: ref.namespace }),
    operation,
    userInfo: event.impersonatedUser ?? event.user,
    object: base.object,
    dryRun: /[?&]dryRun=/.test(event.requestURI ?? ''),
  };
  return { judged: true, request, resource };
}
