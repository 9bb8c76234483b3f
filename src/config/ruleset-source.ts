// Turns RuleSet text (a file, a ConfigMap's `rules.yaml`) into a compiled RuleSet, or into errors
// that name the origin, the line and the field: `rules.yaml:14: rules[2].check: unknown check …`.
// Shared by the CLI, the server's file watcher, the ConfigMap reloader and the ConfigMap's own
// admission check, so a RuleSet is judged valid the same way everywhere.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { compileRuleSet, formatRuleSetError, type CompiledRuleSet } from '../core/index.js';
import { parseDocuments } from './documents.js';

export const DEFAULT_RULES_PATH = fileURLToPath(new URL('../../rules/default.yaml', import.meta.url));

export interface LoadedRuleSet {
  ruleset: CompiledRuleSet;
  /** `sha256:` and 16 hex digits of the parsed document: comments and spacing do not change it. */
  hash: string;
  origin: string;
  /**
   * The ConfigMap's `metadata.resourceVersion` the RuleSet was read from (absent for a file), so an
   * audit event names the exact object version that was in force.
   */
  resourceVersion?: string;
}

export type RuleSetLoad = { ok: true; loaded: LoadedRuleSet } | { ok: false; errors: string[] };

export function parseRuleSet(text: string, origin: string): RuleSetLoad {
  const parsed = parseDocuments(text);
  if (!parsed.ok)
    return { ok: false, errors: [`${origin}:${parsed.line}:${parsed.column}: ${parsed.message}`] };
  const [document, extra] = parsed.documents;
  if (document === undefined) return { ok: false, errors: [`${origin}: holds no RuleSet`] };
  if (extra !== undefined)
    return { ok: false, errors: [`${origin}:${extra.line}: holds more than one document`] };
  const compiled = compileRuleSet(document.value);
  if (!compiled.ok) {
    return {
      ok: false,
      errors: compiled.errors.map((e) => `${origin}:${document.lineOf(e.path)}: ${formatRuleSetError(e)}`),
    };
  }
  const hash = createHash('sha256').update(JSON.stringify(document.value)).digest('hex').slice(0, 16);
  return { ok: true, loaded: { ruleset: compiled.ruleset, hash: `sha256:${hash}`, origin } };
}

export async function loadRuleSetFile(path: string): Promise<RuleSetLoad> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : String(err);
    return { ok: false, errors: [`${path}: cannot read RuleSet (${reason})`] };
  }
  return parseRuleSet(text, path);
}
