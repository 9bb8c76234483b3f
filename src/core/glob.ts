// Glob patterns for namespaces, usernames and groups: `*` matches any run of characters (including
// none), everything else is literal. Compiled once per RuleSet, never per request.

export type Matcher = (value: string) => boolean;

export function compileGlobs(patterns: readonly string[]): Matcher {
  if (patterns.length === 0) return () => false;
  if (patterns.includes('*')) return () => true;
  const literals = new Set(patterns.filter((p) => !p.includes('*')));
  const wildcards = patterns.filter((p) => p.includes('*')).map(globToRegExp);
  return (value) => literals.has(value) || wildcards.some((re) => re.test(value));
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 's');
}

/**
 * The first of `patterns` that matches the whole of `value`, or undefined; same syntax as
 * `compileGlobs`. For values a requester writes at length (a command line): matched without regular
 * expressions, by the greedy wildcard walk that backs up only to the last `*`, so the time is at
 * most the product of the two lengths, whatever the pattern (`*a*a*a*` on a long line of `a`s
 * would make a backtracking regular expression take polynomial time in the number of stars).
 */
export function compileFirstMatch(patterns: readonly string[]): (value: string) => string | undefined {
  const compiled = patterns.map((pattern) => ({ pattern, parts: pattern.split('*') }));
  return (value) => compiled.find(({ parts }) => wildcardMatch(parts, value))?.pattern;
}

/** `parts` is the pattern split at `*`: the first part must start the value, the last end it. */
function wildcardMatch(parts: readonly string[], value: string): boolean {
  const first = parts[0] ?? '';
  if (parts.length === 1) return value === first;
  const last = parts[parts.length - 1] ?? '';
  if (value.length < first.length + last.length) return false;
  if (!value.startsWith(first) || !value.endsWith(last)) return false;
  // Each middle part at its leftmost place after the previous one: leftmost is always safe, as
  // any later place leaves less room for what follows.
  let at = first.length;
  const end = value.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i] ?? '';
    const found = value.indexOf(part, at);
    if (found === -1 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}
