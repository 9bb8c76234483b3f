// The target of `cel` rules: every request, whatever its kind, operation or subresource. A target is
// shared by all rules of its check, so it accepts broadly; which requests one rule judges is its own
// matchConstraints, matched in the check. The view is the request as CEL sees it, built once per
// request however many `cel` rules read it, and costs next to nothing until an expression reads it
// (values.ts converts JSON on access; `request` is built on first read).

import { defineTarget } from '../target.js';
import type { AdmissionRequest } from '../types.js';
import { toCel } from './values.js';

export class CelView {
  readonly object: unknown;
  readonly oldObject: unknown;
  readonly #admission: AdmissionRequest;
  #request: unknown;

  constructor(object: unknown, admission: AdmissionRequest) {
    this.object = object == null ? null : toCel(object);
    this.oldObject = admission.oldObject == null ? null : toCel(admission.oldObject);
    this.#admission = admission;
  }

  /** `request` in CEL: the admission.k8s.io/v1 AdmissionRequest; fields left empty are absent. */
  get request(): unknown {
    this.#request ??= celRequest(this.#admission);
    return this.#request;
  }
}

export const CEL_TARGET = defineTarget<CelView>({
  id: 'any',
  operations: ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'],
  accepts: () => true,
  read: (object, request) => new CelView(object, request),
});

function celRequest(request: AdmissionRequest): unknown {
  const out: Record<string, unknown> = {
    uid: request.uid,
    kind: request.kind,
    resource: request.resource,
    operation: request.operation,
    userInfo: request.userInfo,
    requestKind: request.requestKind ?? request.kind,
    requestResource: request.requestResource ?? request.resource,
  };
  const optional = {
    subResource: request.subResource,
    requestSubResource: request.requestSubResource ?? request.subResource,
    name: request.name,
    namespace: request.namespace,
  };
  for (const [key, value] of Object.entries(optional))
    if (value !== undefined && value !== '') out[key] = value;
  if (request.dryRun !== undefined) out['dryRun'] = request.dryRun;
  if (request.options != null) out['options'] = request.options;
  return toCel(out);
}
