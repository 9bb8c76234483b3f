// The rules ConfigMap (`--rules-configmap NAMESPACE/NAME`, key `rules.yaml`) as both its watcher and
// its admission check read it, so a RuleSet that admission refuses is refused by the watcher with
// the same words, and the other way round. No Kubernetes client here: /validate imports this.

import { isObject } from '../core/index.js';

export const RULES_CONFIGMAP_KEY = 'rules.yaml';

export interface ConfigMapRef {
  namespace: string;
  name: string;
}

// RFC 1123 label (namespaces) and subdomain (ConfigMap names), as the API server validates them.
const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `NAMESPACE/NAME`, as given to `--rules-configmap`. */
export function parseConfigMapRef(
  text: string,
): { ok: true; ref: ConfigMapRef } | { ok: false; error: string } {
  const [namespace, name, extra] = text.split('/');
  if (namespace === undefined || name === undefined || extra !== undefined) {
    return { ok: false, error: `"${text}" is not NAMESPACE/NAME` };
  }
  if (namespace.length > 63 || !NAMESPACE.test(namespace)) {
    return { ok: false, error: `"${namespace}" is not a valid namespace name` };
  }
  if (name.length > 253 || !NAME.test(name)) {
    return { ok: false, error: `"${name}" is not a valid ConfigMap name` };
  }
  return { ok: true, ref: { namespace, name } };
}

/** What every error about the ConfigMap's RuleSet starts with: `configmap NS/NAME rules.yaml`. */
export function configMapOrigin(ref: ConfigMapRef): string {
  return `configmap ${ref.namespace}/${ref.name} ${RULES_CONFIGMAP_KEY}`;
}

/** The RuleSet text of a ConfigMap object, or the error saying why there is none. */
export function rulesTextOf(
  configMap: unknown,
  ref: ConfigMapRef,
): { ok: true; text: string } | { ok: false; error: string } {
  const data = isObject(configMap) ? configMap['data'] : undefined;
  const text = isObject(data) ? data[RULES_CONFIGMAP_KEY] : undefined;
  if (typeof text === 'string') return { ok: true, text };
  const binary = isObject(configMap) ? configMap['binaryData'] : undefined;
  const where =
    isObject(binary) && RULES_CONFIGMAP_KEY in binary
      ? `it is in binaryData, which is not read: the RuleSet must be UTF-8 text in data`
      : `the ConfigMap has no data["${RULES_CONFIGMAP_KEY}"]`;
  return { ok: false, error: `${configMapOrigin(ref)}: missing: ${where}` };
}
