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
