// Multi-document YAML or JSON, with line numbers kept so every error and finding can point at the
// line to fix. Parsed as YAML 1.1, the dialect kubectl and the API server read (`yes` is a boolean
// there), so the CLI sees exactly what the cluster would be sent.

import {
  LineCounter,
  parseAllDocuments,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  type Document,
} from 'yaml';
import type { FieldPath } from '../core/index.js';

export interface SourceDocument {
  /** 0-based position among the non-empty documents of the text. */
  index: number;
  value: unknown;
  /** 1-based line where the document starts. */
  line: number;
  /** 1-based line of the deepest node that exists along `path`. */
  lineOf(path: FieldPath): number;
}

export type ParsedDocuments =
  { ok: true; documents: SourceDocument[] } | { ok: false; line: number; column: number; message: string };

// A billion-laughs document expands aliases without bound; Kubernetes objects never need many.
const MAX_ALIAS_COUNT = 100;
/**
 * Aliases that stay under the count can still point at a large node: 99 aliases of a 800 KB list
 * are 80 MB once anything walks or serialises the value. So what aliases add, counted as nodes
 * plus string characters with every alias expanded, may be at most the size of the text itself
 * (with a floor, so a small document can still reuse a block a few times).
 */
const MIN_ALIAS_EXPANSION = 64 * 1024;

export function parseDocuments(text: string): ParsedDocuments {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, {
    lineCounter,
    version: '1.1',
    prettyErrors: false,
    uniqueKeys: true,
    // Timestamps stay the strings they were written as: the API server's JSON has no dates, and
    // an exception's `expires: 2027-01-31` must reach the RuleSet schema as text.
    customTags: (tags) =>
      tags.filter((tag) => typeof tag === 'string' || tag.tag !== 'tag:yaml.org,2002:timestamp'),
  });
  const docs: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const documents: SourceDocument[] = [];
  for (const doc of docs) {
    const error = doc.errors[0];
    if (error !== undefined) {
      const pos = lineCounter.linePos(error.pos[0]);
      const message = error.message.split('\n')[0] ?? error.message;
      return {
        ok: false,
        line: pos.line,
        column: pos.col,
        // The parser says that keys repeat, not which: name it, as the line to fix.
        message:
          error.code === 'DUPLICATE_KEY'
            ? `duplicate key ${JSON.stringify(keyAt(text, error.pos[0]))}: ${message}`
            : message,
      };
    }
    if (doc.contents === null) continue;
    const expansionLimit = Math.max(MIN_ALIAS_EXPANSION, text.length);
    // An alias is written `*name`: a text without a `*` has none to expand.
    if (text.includes('*') && aliasExpansion(doc) > expansionLimit) {
      const pos = lineCounter.linePos(doc.range[0]);
      return {
        ok: false,
        line: pos.line,
        column: pos.col,
        message: `aliases expand this document by more than ${expansionLimit} characters, more than its own text: write the values out or use fewer aliases`,
      };
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      const pos = lineCounter.linePos(doc.range[0]);
      return {
        ok: false,
        line: pos.line,
        column: pos.col,
        message: err instanceof Error ? err.message : String(err),
      };
    }
    if (value === null || value === undefined) continue;
    const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
    documents.push({
      index: documents.length,
      value,
      line: lineAt(doc.contents.range[0]),
      lineOf(path) {
        let node: unknown = doc.contents;
        let line = lineAt(doc.contents?.range?.[0] ?? 0);
        for (const key of path) {
          if (!isCollection(node)) break;
          // In a map, the line of the key: a block value starts on the line after `params:`.
          if (isMap(node)) {
            const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === key);
            const keyRange = isScalar(pair?.key) ? pair.key.range : undefined;
            if (pair === undefined || keyRange === undefined || keyRange === null) break;
            line = lineAt(keyRange[0]);
            node = pair.value;
            continue;
          }
          const child: unknown = node.get(key, true);
          if (child === undefined || child === null || typeof child !== 'object' || !('range' in child))
            break;
          const range = child.range;
          if (Array.isArray(range) && typeof range[0] === 'number') line = lineAt(range[0]);
          node = child;
        }
        return line;
      },
    });
  }
  return { ok: true, documents };
}

/** The key written at `offset`: up to its colon, unquoted. */
function keyAt(text: string, offset: number): string {
  const rest = text.slice(offset, offset + 256);
  const end = rest.search(/:(\s|$)/);
  const raw = (end === -1 ? (rest.split('\n')[0] ?? '') : rest.slice(0, end)).trim();
  return raw.replace(/^(["'])(.*)\1$/, '$2');
}

/**
 * How much the document's aliases add once expanded: nodes plus string characters, with each alias
 * weighing what its anchored node weighs (its own aliases expanded), minus what the document
 * weighs with every alias counted as one node. One walk in document order, memoised per node and
 * resolving anchors as it meets them (yaml's `Alias.resolve` searches the whole document each
 * time), so this takes time in the document's own size however far its aliases would expand.
 */
function aliasExpansion(doc: Document.Parsed): number {
  const anchors = new Map<string, unknown>();
  const expanded = new Map<unknown, number>();
  let own = 0;
  const weigh = (node: unknown): number => {
    const known = expanded.get(node);
    if (known !== undefined) return known;
    own += 1;
    // An alias always names an anchor met before it; one inside its own anchor (a cycle, which
    // toJS refuses) finds the placeholder set here and weighs one node.
    if ((isScalar(node) || isCollection(node)) && node.anchor !== undefined) {
      anchors.set(node.anchor, node);
      expanded.set(node, 1);
    }
    let weight = 1;
    if (isScalar(node)) {
      if (typeof node.value === 'string') {
        weight += node.value.length;
        own += node.value.length;
      }
    } else if (isAlias(node)) {
      const target = anchors.get(node.source);
      weight = target === undefined ? 1 : weigh(target);
    } else if (isPair(node)) {
      weight += weigh(node.key) + weigh(node.value);
    } else if (isCollection(node)) {
      for (const item of node.items) weight += weigh(item);
    }
    if (!isAlias(node)) expanded.set(node, weight);
    return weight;
  };
  try {
    return weigh(doc.contents) - own;
  } catch {
    // Nesting too deep for the stack: toJS reports it.
    return 0;
  }
}
