// One audit event per admission answer, shaped as the API server's own `audit.k8s.io/v1` Event so
// the pipelines that already ingest Kubernetes audit logs (log shippers, SIEM parsers) take
// Portcullis' decisions without a parser of their own. Level Metadata: the object is never copied
// into an event, only who did what to which object, and what Portcullis answered.

import { performance } from 'node:perf_hooks';
import type { AdmissionRequest, UserInfo } from '../core/index.js';

export type Endpoint = 'validate' | 'mutate';

export interface ObjectReference {
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  apiGroup?: string;
  apiVersion: string;
}

export interface AuditEvent {
  kind: 'Event';
  apiVersion: 'audit.k8s.io/v1';
  level: 'Metadata';
  auditID: string;
  stage: 'ResponseComplete';
  requestURI: string;
  verb: string;
  user: UserInfo;
  sourceIPs?: string[];
  userAgent?: string;
  objectRef?: ObjectReference;
  responseStatus: {
    metadata: Record<string, never>;
    status?: 'Failure';
    code: number;
    reason?: string;
    message?: string;
  };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations: Record<string, string>;
}

export const ANNOTATIONS = {
  decision: 'portcullis.io/decision',
  violations: 'portcullis.io/violations',
  rulesetHash: 'portcullis.io/ruleset-hash',
  rulesetResourceVersion: 'portcullis.io/ruleset-resource-version',
  dryRun: 'portcullis.io/dry-run',
  endpoint: 'portcullis.io/endpoint',
} as const;

/**
 * Wall-clock milliseconds with a microsecond fraction. Date.now() has no sub-millisecond part, and
 * the audit format carries microseconds; performance.now() is also monotonic, so the received and
 * completed stamps of one request never come out in the wrong order.
 */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}

/** RFC 3339 with microseconds, as the API server writes it: `2026-11-23T10:00:00.123456Z`. */
export function microTimestamp(epochMs: number): string {
  // Whole microseconds first: a float this large has no exact 0.456 ms, and flooring it could say .455.
  const micros = Math.round(epochMs * 1000);
  const ms = Math.floor(micros / 1000);
  return `${new Date(ms).toISOString().slice(0, -1)}${String(micros - ms * 1000).padStart(3, '0')}Z`;
}

/** What the transport knows about one HTTP request, whatever became of it. */
export interface RequestFacts {
  endpoint: Endpoint;
  requestURI: string;
  sourceIP: string;
  userAgent: string | undefined;
  receivedAt: number;
}

export interface AdmissionOutcome {
  request: AdmissionRequest;
  code: 200 | 403;
  message: string | undefined;
  decision: string;
  /** `rule=action,…`, empty when no rule had anything to say. */
  violations: string;
  ruleset: RuleSetVersion | undefined;
}

/** The RuleSet in force: its hash, and the ConfigMap version it was read from, if any. */
export interface RuleSetVersion {
  hash: string;
  resourceVersion?: string;
}

/** No annotations at all while no RuleSet has loaded: the decision annotation says what happened. */
function rulesetAnnotations(ruleset: RuleSetVersion | undefined): Record<string, string> {
  if (ruleset === undefined) return {};
  return ruleset.resourceVersion === undefined
    ? { [ANNOTATIONS.rulesetHash]: ruleset.hash }
    : {
        [ANNOTATIONS.rulesetHash]: ruleset.hash,
        [ANNOTATIONS.rulesetResourceVersion]: ruleset.resourceVersion,
      };
}

export function admissionEvent(
  facts: RequestFacts,
  outcome: AdmissionOutcome,
  completedAt: number,
): AuditEvent {
  const { request } = outcome;
  const annotations: Record<string, string> = {
    [ANNOTATIONS.decision]: outcome.decision,
    ...rulesetAnnotations(outcome.ruleset),
    [ANNOTATIONS.dryRun]: String(request.dryRun === true),
    [ANNOTATIONS.endpoint]: facts.endpoint,
  };
  if (outcome.violations !== '') annotations[ANNOTATIONS.violations] = outcome.violations;
  const { userInfo } = request;
  return {
    ...envelope(request.uid, request.operation.toLowerCase(), facts, completedAt),
    user: {
      ...(userInfo.username === undefined ? {} : { username: userInfo.username }),
      ...(userInfo.uid === undefined ? {} : { uid: userInfo.uid }),
      ...(userInfo.groups === undefined ? {} : { groups: userInfo.groups }),
      ...(userInfo.extra === undefined ? {} : { extra: userInfo.extra }),
    },
    objectRef: {
      resource: request.resource.resource,
      ...(request.subResource ? { subresource: request.subResource } : {}),
      ...(request.namespace ? { namespace: request.namespace } : {}),
      ...(request.name ? { name: request.name } : {}),
      ...(request.resource.group === '' ? {} : { apiGroup: request.resource.group }),
      apiVersion: request.resource.version,
    },
    responseStatus:
      outcome.code === 200
        ? { metadata: {}, code: 200 }
        : {
            metadata: {},
            status: 'Failure',
            code: outcome.code,
            reason: 'Forbidden',
            message: outcome.message ?? '',
          },
    annotations,
  };
}

/**
 * A request that never became a decision (bad JSON, not an AdmissionReview, too large): still
 * one event, so an auditor sees who probes the webhook. It has no uid or user to cite; the verb is
 * the HTTP method, as for the API server's own non-resource requests.
 */
export function rejectedEvent(
  facts: RequestFacts,
  auditID: string,
  status: { code: number; reason: string; message: string },
  ruleset: RuleSetVersion | undefined,
  completedAt: number,
): AuditEvent {
  return {
    ...envelope(auditID, 'post', facts, completedAt),
    user: {},
    responseStatus: { metadata: {}, status: 'Failure', ...status },
    annotations: { ...rulesetAnnotations(ruleset), [ANNOTATIONS.endpoint]: facts.endpoint },
  };
}

function envelope(
  auditID: string,
  verb: string,
  facts: RequestFacts,
  completedAt: number,
): Omit<AuditEvent, 'user' | 'objectRef' | 'responseStatus' | 'annotations'> {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID,
    stage: 'ResponseComplete',
    requestURI: facts.requestURI,
    verb,
    sourceIPs: [facts.sourceIP],
    ...(facts.userAgent === undefined ? {} : { userAgent: facts.userAgent }),
    requestReceivedTimestamp: microTimestamp(facts.receivedAt),
    stageTimestamp: microTimestamp(completedAt),
  };
}
