// admission.k8s.io/v1 AdmissionReview: the envelope the API server sends and expects back. Parsed
// with a schema compiled once; the object inside stays `unknown` for the core's readers, which fail
// closed on what they cannot read.
//
// The schema is written with TypeBox and its TypeScript type derived from it (`Static`), so the two
// cannot drift: a field the schema leaves optional (or leaves out) is optional in the derived type,
// and the derived request must be assignable to the core's `AdmissionRequest` for this file to
// compile. A review that passes the schema therefore has every field `evaluate` reads, with the
// type it reads, and a slip in the schema is a build error rather than a 500 at run time.

import { Type, type Static } from '@sinclair/typebox';
import { Ajv, type ErrorObject } from 'ajv';
import { isObject, type AdmissionRequest, type GroupVersionKind } from '../core/index.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

// Bounds on what the answer echoes or the audit event cites: Kubernetes uids are 36-character
// UUIDs, object names at most 253 characters (a DNS subdomain), namespaces 63 (a DNS label).
const MAX_UID_LENGTH = 128;
const MAX_NAME_LENGTH = 253;
const MAX_NAMESPACE_LENGTH = 63;

const name = Type.String({ maxLength: MAX_NAME_LENGTH });
const GroupVersionKindSchema = Type.Object({
  group: name,
  version: name,
  kind: Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH }),
});
const GroupVersionResourceSchema = Type.Object({
  group: name,
  version: name,
  resource: Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH }),
});

const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] as const;

const AdmissionRequestSchema = Type.Object({
  uid: Type.String({ minLength: 1, maxLength: MAX_UID_LENGTH }),
  kind: GroupVersionKindSchema,
  resource: GroupVersionResourceSchema,
  subResource: Type.Optional(name),
  requestKind: Type.Optional(GroupVersionKindSchema),
  requestResource: Type.Optional(GroupVersionResourceSchema),
  requestSubResource: Type.Optional(name),
  name: Type.Optional(name),
  namespace: Type.Optional(Type.String({ maxLength: MAX_NAMESPACE_LENGTH })),
  operation: Type.Union(OPERATIONS.map((operation) => Type.Literal(operation))),
  userInfo: Type.Object({
    username: Type.Optional(Type.String()),
    uid: Type.Optional(Type.String()),
    groups: Type.Optional(Type.Array(Type.String())),
    extra: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()))),
  }),
  object: Type.Optional(Type.Unknown()),
  oldObject: Type.Optional(Type.Unknown()),
  dryRun: Type.Optional(Type.Boolean()),
  options: Type.Optional(Type.Unknown()),
});

const AdmissionReviewSchema = Type.Object({
  apiVersion: Type.Literal(ADMISSION_API_VERSION),
  kind: Type.Literal('AdmissionReview'),
  request: AdmissionRequestSchema,
});

/** What the schema admits, as TypeScript sees it. */
type ValidatedReview = Static<typeof AdmissionReviewSchema>;

export interface AdmissionReview {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  request: AdmissionRequest;
}

// verbose: a failed anyOf (the operation) reports the schema it failed, so the message can list
// the values allowed. Only failures pay for it.
const validateReview = new Ajv({ allErrors: false, strict: false, verbose: true }).compile<ValidatedReview>(
  AdmissionReviewSchema,
);

/** The review, or a sentence saying what is wrong with it (for a 400 answer or the CLI). */
export function parseAdmissionReview(
  body: unknown,
): { ok: true; review: AdmissionReview } | { ok: false; error: string } {
  // No cast: the schema's own type must be assignable to the core's (see the header).
  if (validateReview(body)) return { ok: true, review: body };
  const errors = validateReview.errors ?? [];
  // A failed anyOf comes last, after the failure of each of its branches.
  const error = errors.at(-1)?.keyword === 'anyOf' ? errors.at(-1) : errors[0];
  if (error === undefined) return { ok: false, error: 'not an AdmissionReview' };
  return { ok: false, error: `invalid AdmissionReview: ${describeError(error)}` };
}

function describeError(error: ErrorObject): string {
  const where =
    error.instancePath === '' ? 'AdmissionReview' : error.instancePath.slice(1).replaceAll('/', '.');
  switch (error.keyword) {
    case 'required':
      return `${where === 'AdmissionReview' ? '' : where + '.'}${String(error.params['missingProperty'])} is required`;
    case 'const':
      return `${where} must be ${JSON.stringify(error.params['allowedValue'])}`;
    case 'anyOf': {
      const allowed = constsOf(error.parentSchema);
      return allowed.length > 0
        ? `${where} must be one of ${allowed.join(', ')}`
        : `${where} ${error.message ?? 'is invalid'}`;
    }
    default:
      return `${where} ${error.message ?? 'is invalid'}`;
  }
}

/** The values of an anyOf of constants (how TypeBox writes a union of literals). */
function constsOf(schema: unknown): string[] {
  const branches: unknown = isObject(schema) ? schema['anyOf'] : undefined;
  if (!Array.isArray(branches)) return [];
  return branches.flatMap((branch: unknown) =>
    isObject(branch) && typeof branch['const'] === 'string' ? [branch['const']] : [],
  );
}

/**
 * Resource names for the kinds the CLI meets as bare objects: `cel` rules match by resource. Other
 * kinds get Kubernetes' own guess (kindToResource), and custom kinds their CRD's plural.
 */
const RESOURCE_OF_KIND: Record<string, string> = {
  Service: 'services',
  Secret: 'secrets',
  ServiceAccount: 'serviceaccounts',
  Namespace: 'namespaces',
  Node: 'nodes',
  Endpoints: 'endpoints',
  EndpointSlice: 'endpointslices',
  Ingress: 'ingresses',
  IngressClass: 'ingressclasses',
  NetworkPolicy: 'networkpolicies',
  PersistentVolume: 'persistentvolumes',
  PersistentVolumeClaim: 'persistentvolumeclaims',
  StorageClass: 'storageclasses',
  Role: 'roles',
  ClusterRole: 'clusterroles',
  HorizontalPodAutoscaler: 'horizontalpodautoscalers',
  PodDisruptionBudget: 'poddisruptionbudgets',
  ResourceQuota: 'resourcequotas',
  LimitRange: 'limitranges',
  PriorityClass: 'priorityclasses',
  RuntimeClass: 'runtimeclasses',
  Lease: 'leases',
  Event: 'events',
  CustomResourceDefinition: 'customresourcedefinitions',
  ValidatingWebhookConfiguration: 'validatingwebhookconfigurations',
  MutatingWebhookConfiguration: 'mutatingwebhookconfigurations',
  ValidatingAdmissionPolicy: 'validatingadmissionpolicies',
  ValidatingAdmissionPolicyBinding: 'validatingadmissionpolicybindings',
  Pod: 'pods',
  PodTemplate: 'podtemplates',
  ReplicationController: 'replicationcontrollers',
  Deployment: 'deployments',
  DaemonSet: 'daemonsets',
  StatefulSet: 'statefulsets',
  ReplicaSet: 'replicasets',
  Job: 'jobs',
  CronJob: 'cronjobs',
  RoleBinding: 'rolebindings',
  ClusterRoleBinding: 'clusterrolebindings',
  ConfigMap: 'configmaps',
};

/** Kinds without a namespace, among those Portcullis judges or is commonly handed. */
const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set([
  'ClusterRoleBinding',
  'ClusterRole',
  'Namespace',
  'Node',
  'PersistentVolume',
  'CustomResourceDefinition',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
  'StorageClass',
  'PriorityClass',
  'RuntimeClass',
  'IngressClass',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
]);

/** A custom kind, from a CustomResourceDefinition: its plural and whether it is namespaced. */
export interface CustomKind {
  resource: string;
  namespaced: boolean;
}

/** Custom kinds by `group/Kind`. */
export type CustomKinds = ReadonlyMap<string, CustomKind>;

/** apimachinery's UnsafeGuessKindToResource: what the API server's discovery would most likely say. */
function guessResource(kind: string): string {
  const lower = kind.toLowerCase();
  if (lower.endsWith('s')) return `${lower}es`;
  if (lower.endsWith('y') && !/[aeiou]y$/.test(lower)) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

export function groupVersionKindOf(apiVersion: string, kind: string): GroupVersionKind {
  const slash = apiVersion.indexOf('/');
  return slash === -1
    ? { group: '', version: apiVersion, kind }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1), kind };
}

/**
 * The request the API server would send for `kubectl create` of this object: a CREATE by an
 * anonymous CLI user. Namespaced objects without a namespace land in `defaultNamespace`, as kubectl does.
 */
export function createRequestFor(
  object: Readonly<Record<string, unknown>> & { apiVersion: string; kind: string },
  defaultNamespace: string,
  customKinds: CustomKinds = new Map(),
): AdmissionRequest {
  const gvk = groupVersionKindOf(object.apiVersion, object.kind);
  const custom = customKinds.get(`${gvk.group}/${gvk.kind}`);
  const metadata = isObject(object['metadata']) ? object['metadata'] : {};
  const name = typeof metadata['name'] === 'string' ? metadata['name'] : undefined;
  const ownNamespace = typeof metadata['namespace'] === 'string' ? metadata['namespace'] : undefined;
  const clusterScoped = custom === undefined ? CLUSTER_SCOPED_KINDS.has(object.kind) : !custom.namespaced;
  const namespace = clusterScoped ? undefined : (ownNamespace ?? defaultNamespace);
  const resource = custom?.resource ?? RESOURCE_OF_KIND[object.kind] ?? guessResource(object.kind);
  // The API server sets the namespace it stores the object in before admission sees it.
  const admitted =
    namespace !== undefined && ownNamespace === undefined
      ? { ...object, metadata: { ...metadata, namespace } }
      : object;
  return {
    uid: '00000000-0000-0000-0000-000000000000', // no API server assigned one: a dry run
    kind: gvk,
    resource: { group: gvk.group, version: gvk.version, resource },
    ...(name === undefined ? {} : { name }),
    ...(namespace === undefined ? {} : { namespace }),
    operation: 'CREATE',
    userInfo: {},
    object: admitted,
    dryRun: true,
  };
}

const OPERATION_NAMES: ReadonlySet<string> = new Set(OPERATIONS);

/** The options a CONNECT into a pod carries as its object, by kind, and the subresource each is for. */
const CONNECT_OPTIONS_KINDS: ReadonlyMap<string, string> = new Map([
  ['PodExecOptions', 'exec'],
  ['PodAttachOptions', 'attach'],
  ['PodPortForwardOptions', 'portforward'],
]);

/**
 * What the API server sends for a CONNECT with these options: the pod is not in the request (the
 * review names it in `request.name`), the options are the object.
 */
function connectRequestFor(kind: string, subResource: string, defaultNamespace: string): AdmissionRequest {
  const gvk = { group: '', version: 'v1', kind };
  const resource = { group: '', version: 'v1', resource: 'pods' };
  return {
    uid: '00000000-0000-0000-0000-000000000000',
    kind: gvk,
    resource,
    subResource,
    requestKind: gvk,
    requestResource: resource,
    requestSubResource: subResource,
    namespace: defaultNamespace,
    operation: 'CONNECT',
    userInfo: {},
  };
}

/**
 * For the CLI, which is handed saved and hand-written reviews: v1 or v1beta1 (same request shape),
 * and the fields the API server always fills (uid, kind, resource, userInfo) derived when absent.
 * The webhook never uses this: it takes only what `parseAdmissionReview` accepts.
 */
export function requestFromSavedReview(
  review: Readonly<Record<string, unknown>>,
  defaultNamespace: string,
): { ok: true; request: AdmissionRequest } | { ok: false; error: string } {
  const strict = parseAdmissionReview(review);
  if (strict.ok) return { ok: true, request: strict.review.request };
  if (review['apiVersion'] !== ADMISSION_API_VERSION && review['apiVersion'] !== 'admission.k8s.io/v1beta1') {
    return strict;
  }
  const request = review['request'];
  if (!isObject(request)) return { ok: false, error: 'invalid AdmissionReview: request is required' };
  const operation = request['operation'];
  if (typeof operation !== 'string' || !OPERATION_NAMES.has(operation)) {
    return {
      ok: false,
      error: 'invalid AdmissionReview: request.operation must be CREATE, UPDATE, DELETE or CONNECT',
    };
  }
  const object = isObject(request['object'])
    ? request['object']
    : isObject(request['oldObject'])
      ? request['oldObject']
      : undefined;
  if (
    object === undefined ||
    typeof object['apiVersion'] !== 'string' ||
    typeof object['kind'] !== 'string'
  ) {
    return strict;
  }
  // Start from what the API server would send for this object, then keep what the review does say.
  const connect = operation === 'CONNECT' ? CONNECT_OPTIONS_KINDS.get(object['kind']) : undefined;
  const derived =
    connect === undefined
      ? createRequestFor(
          { ...object, apiVersion: object['apiVersion'], kind: object['kind'] },
          defaultNamespace,
        )
      : connectRequestFor(object['kind'], connect, defaultNamespace);
  const merged: Record<string, unknown> = { ...derived, userInfo: {}, ...request, operation };
  const parsed = parseAdmissionReview({
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    request: merged,
  });
  return parsed.ok ? { ok: true, request: parsed.review.request } : parsed;
}
