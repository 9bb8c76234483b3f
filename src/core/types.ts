// The shapes the core works on. admission.k8s.io/v1 has no published TypeScript types, so the
// subset Portcullis reads is written out here. Objects inside a request stay `unknown` until a
// reader (pod.ts, rbac.ts) has checked the fields it needs: malformed input must fail closed, not
// throw.

import type { RoleLookup } from './grants.js';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** The `request` of an admission.k8s.io/v1 AdmissionReview, as far as Portcullis reads it. */
export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  requestKind?: GroupVersionKind;
  requestResource?: GroupVersionResource;
  requestSubResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo: UserInfo;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
  options?: unknown;
}

/**
 * What `evaluate` is told besides the request and the RuleSet: facts from outside the request that
 * the caller (webhook, CLI) gathered, each optional. The core stays pure: it reads them, never
 * fetches them. A check that needs a fact it was not given says so in its finding.
 */
export interface EvaluationContext {
  /** The time of the decision: exceptions apply only while it lies in their window. Without it, none do. */
  now?: Date;
  /**
   * Namespace objects by name, as the API server stores them: a `cel` rule's `namespaceObject` and
   * `namespaceSelector` read them (serve: from a watch on Namespaces; check: those in its input).
   * A namespace missing here is `null` to CEL, and only its `kubernetes.io/metadata.name` label is
   * known to a namespaceSelector.
   */
  namespaces?: ReadonlyMap<string, unknown>;
  /**
   * The ClusterRoles the caller can see, for the checks that judge a binding by what its role
   * grants: `serve` keeps the API server's in a watched cache, `check` takes those of its input.
   * Without it only Kubernetes' bootstrap roles are known (src/core/bootstrap.ts).
   */
  roles?: RoleLookup;
  /**
   * The pod a CONNECT (exec, attach, port-forward) goes into, which the request only names: `serve`
   * looks it up (bounded in time) when a rule needs its labels (see connect.ts `wantsConnectPod`).
   * A failed lookup says why; absent, nobody looked (`portcullis check` has no cluster to ask).
   */
  connectPod?: PodLookup;
}

/** A deny's HTTP status reason, as a ValidatingAdmissionPolicy validation names it. */
export type DenyReason = 'Unauthorized' | 'Forbidden' | 'Invalid' | 'RequestEntityTooLarge';

/** The outcome of looking a pod up: its labels, or why they are not known. */
export type PodLookup = { ok: true; labels: Readonly<Record<string, string>> } | { ok: false; error: string };

/** A path into the admitted object, e.g. ['spec', 'containers', 0, 'image']. */
export type FieldPath = readonly (string | number)[];

export type Action = 'deny' | 'warn' | 'audit';

export interface Violation {
  /** The RuleSet rule that was violated (its `name`). */
  rule: string;
  check: string;
  action: Action;
  /** What is wrong and where, e.g. `container "app": securityContext.privileged must not be true`. */
  message: string;
  /** The field to fix, from the root of the admitted object. */
  path: FieldPath;
  /**
   * Set when the check itself failed (a bug, or a fact it could not have): the rule fails closed,
   * denied whatever its action, and the message says why.
   */
  error?: true;
  /** The status reason a deny answers with (default Forbidden); `cel` validations set it. */
  reason?: DenyReason;
  /** Set when an exception in force lifts this violation: it no longer denies, warns or audits. */
  exception?: AppliedException;
}

/** An exception as a decision cites it. */
export interface AppliedException {
  name: string;
  reason: string;
  /** RFC 3339, UTC. */
  expires: string;
}

/** Why a request was allowed without running the rules. */
export type SkipReason =
  | { kind: 'operation'; detail: string }
  | { kind: 'subresource'; detail: string }
  | { kind: 'exempt'; detail: string }
  | { kind: 'unchanged'; detail: string };

export interface Decision {
  allowed: boolean;
  /** Every violation, whatever its action, in rule order. */
  violations: Violation[];
  /** Set when the rules were not run at all. */
  skipped?: SkipReason;
  /** Set when the object could not be read: the request fails closed. */
  malformed?: { path: FieldPath; message: string };
  /** Names of the rules whose scope included this request. */
  rulesApplied: string[];
  /** `<rule>.<key>` → value: what `cel` rules' auditAnnotations recorded for this request. */
  auditAnnotations?: Record<string, string>;
  /**
   * Exceptions that match this request and would lift one of its violations, but are expired (or
   * not yet granted) at the decision's time: not applied. Said so the owner sees why it stopped working.
   */
  lapsedExceptions?: (AppliedException & { state: 'expired' | 'not-yet' })[];
}
