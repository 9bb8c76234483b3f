// Turns RuleSet text (a file, a ConfigMap's `rules.yaml`) into a compiled RuleSet, or into errors
// that name the origin, the line and the field: `rules.yaml:14: rules[2].check: unknown check …`.
// Shared by the CLI, the server's file watcher, the ConfigMap reloader and the ConfigMap's own
// admission check, so a RuleSet is judged valid the same way everywhere.

import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
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

/**
 * The largest RuleSet text taken: 25 times the shipped RuleSet, and a quarter of what a ConfigMap
 * holds. Parsing YAML costs about 2 s per MiB here, all of it on the event loop, so this bound is
 * also what keeps a reload from holding up admission answers. A larger text is refused before it
 * is parsed, and a file before it is read.
 */
export const MAX_RULESET_BYTES = 256 * 1024;

function tooLarge(origin: string, bytes: number): string {
  return `${origin}: is ${bytes} bytes, over the ${MAX_RULESET_BYTES} bytes (256 KiB) a RuleSet may have`;
}

export function parseRuleSet(text: string, origin: string): RuleSetLoad {
  // Characters first: no string of fewer than a quarter of the bound can be over it in UTF-8.
  if (text.length > MAX_RULESET_BYTES / 4) {
    const bytes = Buffer.byteLength(text);
    if (bytes > MAX_RULESET_BYTES) return { ok: false, errors: [tooLarge(origin, bytes)] };
  }
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
  const read = await readRuleSetFile(path);
  return read.ok ? parseRuleSet(read.text, path) : { ok: false, errors: [read.error] };
}

/**
 * A RuleSet file's text, read only when it is within MAX_RULESET_BYTES: a 50 MB file (a mounted
 * file gone wrong) is refused from its size, without a byte of it in memory.
 */
export async function readRuleSetFile(
  path: string,
): Promise<{ ok: true; text: string } | { ok: false; error: string }> {
  let file: FileHandle | undefined;
  try {
    file = await open(path, 'r');
    const { size } = await file.stat();
    if (size > MAX_RULESET_BYTES) return { ok: false, error: tooLarge(path, size) };
    // One byte more than allowed: a file that grew since stat is caught by what was read.
    const buffer = Buffer.allocUnsafe(MAX_RULESET_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_RULESET_BYTES) return { ok: false, error: tooLarge(path, length) };
    }
    return { ok: true, text: buffer.toString('utf8', 0, length) };
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : String(err);
    return { ok: false, error: `${path}: cannot read RuleSet (${reason})` };
  } finally {
    await file?.close();
  }
}
