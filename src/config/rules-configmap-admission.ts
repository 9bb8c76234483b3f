// Portcullis judges edits to its own rules ConfigMap: a CREATE or UPDATE of `NAMESPACE/NAME` whose
// `data["rules.yaml"]` is missing or not a valid RuleSet is denied at once, with the errors the
// watcher would have logged (`parseRuleSet`, origin `configmap NS/NAME rules.yaml`), so a broken
// RuleSet is refused at `kubectl apply` instead of surfacing later as an Event.
//
// Reads: resource (group "", resource "configmaps", no subresource), namespace, name (or
// object.metadata.name when a CREATE leaves `name` empty), operation, object.data["rules.yaml"],
// oldObject.data["rules.yaml"]. Allowed: anything else, DELETE (the watcher keeps the last good
// RuleSet), and an UPDATE that leaves `rules.yaml` as it was — a label or annotation edit is not
// blocked by a RuleSet that was already stored before Portcullis judged it.

import { isObject, type AdmissionRequest, type Decision, type Violation } from '../core/index.js';
import { configMapOrigin, rulesTextOf, RULES_CONFIGMAP_KEY, type ConfigMapRef } from './rules-configmap.js';
import { parseRuleSet } from './ruleset-source.js';

/** The rule name a refused rules ConfigMap cites, in the deny message, metrics and audit events. */
export const RULES_CONFIGMAP_RULE = 'portcullis-ruleset';
const CHECK = 'ruleset';
const FIELD = ['data', RULES_CONFIGMAP_KEY] as const;

/** The verdict on a request for the rules ConfigMap; undefined when the request is for anything else. */
export function judgeRulesConfigMap(request: AdmissionRequest, ref: ConfigMapRef): Decision | undefined {
  if (!isRulesConfigMap(request, ref)) return undefined;
  if (request.operation === 'UPDATE' && sameRulesText(request.object, request.oldObject, ref)) {
    return {
      allowed: true,
      violations: [],
      skipped: { kind: 'unchanged', detail: `the update does not change data["${RULES_CONFIGMAP_KEY}"]` },
      rulesApplied: [RULES_CONFIGMAP_RULE],
    };
  }
  const text = rulesTextOf(request.object, ref);
  const errors = text.ok ? errorsOf(parseRuleSet(text.text, configMapOrigin(ref))) : [text.error];
  const violations = errors.map((message): Violation => ({
    rule: RULES_CONFIGMAP_RULE,
    check: CHECK,
    action: 'deny',
    message,
    path: FIELD,
  }));
  return { allowed: violations.length === 0, violations, rulesApplied: [RULES_CONFIGMAP_RULE] };
}

function errorsOf(load: ReturnType<typeof parseRuleSet>): string[] {
  return load.ok ? [] : load.errors;
}

function isRulesConfigMap(request: AdmissionRequest, ref: ConfigMapRef): boolean {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return false;
  if (request.resource.group !== '' || request.resource.resource !== 'configmaps') return false;
  if ((request.subResource ?? '') !== '') return false;
  if (request.namespace !== ref.namespace) return false;
  return nameOf(request) === ref.name;
}

function nameOf(request: AdmissionRequest): string | undefined {
  if (request.name !== undefined && request.name !== '') return request.name;
  const metadata = isObject(request.object) ? request.object['metadata'] : undefined;
  const name = isObject(metadata) ? metadata['name'] : undefined;
  return typeof name === 'string' ? name : undefined;
}

function sameRulesText(object: unknown, oldObject: unknown, ref: ConfigMapRef): boolean {
  if (oldObject === undefined) return false;
  const now = rulesTextOf(object, ref);
  const before = rulesTextOf(oldObject, ref);
  return now.ok && before.ok && now.text === before.text;
}
