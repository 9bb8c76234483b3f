// What the dashboard and alert tests need from PromQL: the metric names an expression reads, and
// the metric names a running Portcullis exports (from its /metrics text). Both sides are kept to
// names only: whether an expression is valid PromQL is promtool's job (test/monitoring/).

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'and',
  'or',
  'unless',
  'atan2',
  'inf',
  'nan',
]);

/**
 * The metric names `expr` selects, sorted and without repeats: identifiers that are not functions
 * (followed by `(`), keywords, label names (inside `{…}`, `by (…)` and the like), durations or
 * string contents. Grafana's `$__rate_interval`-style variables count as durations.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const name = match[0];
    const after = stripped.slice((match.index ?? 0) + name.length).trimStart();
    const before = stripped.slice(0, match.index ?? 0);
    if (after.startsWith('(') || KEYWORDS.has(name.toLowerCase())) continue;
    // A number's exponent (1e3) or a duration's unit (5m) is part of a literal, not a name.
    if (/[0-9.]$/.test(before)) continue;
    names.add(name);
  }
  return [...names].sort();
}

/**
 * The sample names of a Prometheus text exposition: every `# TYPE` line's metric (a counter or
 * gauge with labels but no sample yet is still exported), a histogram's `_bucket`, `_sum` and
 * `_count` with it, and the names of the sample lines themselves.
 */
export function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type?.[1] !== undefined) {
      names.add(type[1]);
      if (type[2] === 'histogram')
        for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${type[1]}${suffix}`);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample?.[1] !== undefined) names.add(sample[1]);
  }
  return names;
}
