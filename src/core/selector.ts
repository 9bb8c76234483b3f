// A metav1.LabelSelector as the API server reads it (metav1.LabelSelectorAsSelector): every
// matchLabels pair and every matchExpressions requirement must hold. One reading for the cel
// rules' namespaceSelector and objectSelector and for a ClusterRole's aggregationRule.

export interface LabelSelector {
  matchLabels?: Readonly<Record<string, string>>;
  matchExpressions?: readonly { key: string; operator: string; values?: readonly string[] }[];
}

/** Whether `labels` satisfy `selector`; no selector selects everything. */
export function selectorMatches(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, unknown>>,
): boolean {
  if (selector === undefined) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    // Own keys only: a label named like an Object.prototype member is not inherited.
    const has = Object.hasOwn(labels, key);
    const value = has ? labels[key] : undefined;
    const listed = typeof value === 'string' && values.includes(value);
    switch (operator) {
      case 'In':
        return listed;
      case 'NotIn':
        return !listed;
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
      default:
        // The API server refuses any other operator; an unknown one selects nothing.
        return false;
    }
  });
}
