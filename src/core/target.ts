// What a check judges. A target names the requests it takes (kinds, operations, subresources) and
// reads the admitted object into a view once per request, however many rules look at it: pods for
// the pod checks, bindings for the binding checks, and so on. A check names its target; the engine
// (evaluate.ts, mutate.ts) never knows what a pod is.

import { readObject, type Malformed } from './read.js';
import type { AdmissionRequest, Operation } from './types.js';

export type ReadResult<V> = { ok: true; value: V } | { ok: false; error: Malformed };

export interface TargetSpec<V> {
  /** `pod`, `binding`, …: shown in docs and in the compiled RuleSet. */
  id: string;
  /** Whether the request's kind (and subresource) is one this target reads. */
  accepts(request: AdmissionRequest): boolean;
  /** Operations judged; others are skipped before any rule runs. */
  operations: readonly Operation[];
  /**
   * Reads the object (`request.object`, or `oldObject` for the comparison of an UPDATE). Throws
   * `MalformedInput` through the typed readers of read.ts; the target turns that into a value.
   */
  read(object: unknown, request: AdmissionRequest): V;
  /**
   * The part of the view whose change makes an UPDATE worth judging again; undefined when every
   * UPDATE is judged. An UPDATE that leaves it as it was (a label, a finalizer, a status write) is
   * not judged again, as pod-security-admission does: otherwise tightening a rule would stop
   * existing objects from ever being relabelled or deleted through their finalizers.
   */
  judgedPart?: (view: V) => unknown;
  /** Whether /mutate may patch this request (a running pod's spec is immutable, for one). */
  mutable?: (request: AdmissionRequest) => boolean;
}

export interface Target<V> {
  readonly id: string;
  readonly operations: readonly Operation[];
  accepts(request: AdmissionRequest): boolean;
  /** The view of `request.object`, read once per request however many rules ask. */
  view(request: AdmissionRequest): ReadResult<V>;
  /** The view of any object of this request's kind (the object as /mutate has patched it so far). */
  read(object: unknown, request: AdmissionRequest): ReadResult<V>;
  /** True for an UPDATE that does not change what this target's checks judge. */
  unchanged(request: AdmissionRequest): boolean;
  mutable(request: AdmissionRequest): boolean;
}

export function defineTarget<V>(spec: TargetSpec<V>): Target<V> {
  // Keyed by the request object: evaluate and mutate hand every rule the same request, one request
  // at a time (they are synchronous), so the last request's view is the one asked for again. One
  // entry, not a WeakMap: an entry per request in a WeakMap cost more garbage collection (about
  // 2 µs a request) than reading most views, and one entry holds at most one request alive.
  let lastRequest: AdmissionRequest | undefined;
  let lastView: ReadResult<V> | undefined;
  const read = (object: unknown, request: AdmissionRequest): ReadResult<V> =>
    readObject(() => spec.read(object, request));
  const view = (request: AdmissionRequest): ReadResult<V> => {
    if (lastRequest === request && lastView !== undefined) return lastView;
    const result = read(request.object, request);
    lastRequest = request;
    lastView = result;
    return result;
  };
  const judgedPart = spec.judgedPart;
  return {
    id: spec.id,
    operations: spec.operations,
    accepts: (request) => spec.operations.includes(request.operation) && spec.accepts(request),
    view,
    read,
    unchanged(request) {
      if (judgedPart === undefined || request.operation !== 'UPDATE' || request.oldObject === undefined)
        return false;
      const current = view(request);
      const previous = read(request.oldObject, request);
      return current.ok && previous.ok && deepEqual(judgedPart(previous.value), judgedPart(current.value));
    },
    mutable: (request) => spec.mutable?.(request) ?? false,
  };
}

/** Deep equality of JSON values (key order ignored, list order kept: a reorder counts as a change). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const entriesA: [string, unknown][] = Object.entries(a);
  const entriesB = new Map<string, unknown>(Object.entries(b));
  return (
    entriesA.length === entriesB.size &&
    entriesA.every(([k, v]) => entriesB.has(k) && deepEqual(v, entriesB.get(k)))
  );
}
