// A ValidatingAdmissionPolicy's matchConstraints, read as the API server matches them
// (k8s.io/apiserver admission/plugin/policy/matching): resourceRules and excludeResourceRules by
// operation, group, version, resource and subresource (`*`, `pods/*`, `*/scale`), resourceNames
// and scope; namespaceSelector on the namespace's labels; objectSelector on the object's or, for
// DELETE, the old object's labels.

import { selectorMatches } from '../selector.js';
import type { AdmissionRequest } from '../types.js';

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface ResourceRule {
  apiGroups?: string[];
  apiVersions?: string[];
  operations?: string[];
  resources?: string[];
  resourceNames?: string[];
  scope?: 'Cluster' | 'Namespaced' | '*';
}

export interface MatchConstraints {
  resourceRules?: ResourceRule[];
  excludeResourceRules?: ResourceRule[];
  namespaceSelector?: LabelSelector;
  objectSelector?: LabelSelector;
  matchPolicy?: 'Exact' | 'Equivalent';
}

export type Labels = Readonly<Record<string, unknown>>;

const listed = (list: readonly string[] | undefined, value: string): boolean =>
  list !== undefined && (list.includes('*') || list.includes(value));

function resourceListed(
  resources: readonly string[] | undefined,
  resource: string,
  subresource: string,
): boolean {
  if (resources === undefined) return false;
  const full = subresource === '' ? resource : `${resource}/${subresource}`;
  return resources.some((entry) => {
    if (entry === '*/*' || entry === full) return true;
    const [res = '', sub] = entry.split('/', 2);
    if (sub === undefined) return res === '*' && subresource === '';
    return (res === '*' && sub === subresource) || (res === resource && sub === '*' && subresource !== '');
  });
}

export function ruleMatches(rule: ResourceRule, request: AdmissionRequest): boolean {
  if (!listed(rule.operations, request.operation)) return false;
  if (!listed(rule.apiGroups, request.resource.group)) return false;
  if (!listed(rule.apiVersions, request.resource.version)) return false;
  if (!resourceListed(rule.resources, request.resource.resource, request.subResource ?? '')) return false;
  const names = rule.resourceNames ?? [];
  if (names.length > 0 && !names.includes(request.name ?? '')) return false;
  const namespaced = (request.namespace ?? '') !== '';
  const scope = rule.scope ?? '*';
  if (scope === 'Cluster' && namespaced) return false;
  if (scope === 'Namespaced' && !namespaced) return false;
  return true;
}

function labelsOf(object: unknown): Labels {
  if (typeof object !== 'object' || object === null) return {};
  const metadata = 'metadata' in object ? object.metadata : undefined;
  if (typeof metadata !== 'object' || metadata === null) return {};
  const labels = 'labels' in metadata ? metadata.labels : undefined;
  return typeof labels === 'object' && labels !== null && !Array.isArray(labels) ? { ...labels } : {};
}

/**
 * Whether the request is one the constraints name. `namespaceLabels` are those of the request's
 * namespace (a cluster-scoped object is not filtered by namespaceSelector; a Namespace by its own).
 */
export function constraintsMatch(
  constraints: MatchConstraints,
  request: AdmissionRequest,
  namespaceLabels: Labels,
): boolean {
  if (!(constraints.resourceRules ?? []).some((rule) => ruleMatches(rule, request))) return false;
  if ((constraints.excludeResourceRules ?? []).some((rule) => ruleMatches(rule, request))) return false;
  const isNamespace = request.resource.group === '' && request.resource.resource === 'namespaces';
  if ((request.namespace ?? '') !== '' || isNamespace) {
    const labels = isNamespace ? labelsOf(request.object ?? request.oldObject) : namespaceLabels;
    if (!selectorMatches(constraints.namespaceSelector, labels)) return false;
  }
  if (constraints.objectSelector !== undefined) {
    const matchesObject =
      request.object != null && selectorMatches(constraints.objectSelector, labelsOf(request.object));
    const matchesOld =
      request.oldObject != null && selectorMatches(constraints.objectSelector, labelsOf(request.oldObject));
    if (!matchesObject && !matchesOld) return false;
  }
  return true;
}

export { labelsOf };
