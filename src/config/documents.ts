// Multi-document YAML or JSON, with line numbers kept so every error and finding can point at the
// line to fix. Parsed as YAML 1.1, the dialect kubectl and the API server read (`yes` is a boolean
// there), so the CLI sees exactly what the cluster would be sent.

import { LineCounter, parseAllDocuments, isCollection, type Document } from 'yaml';
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

export function parseDocuments(text: string): ParsedDocuments {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, {
    lineCounter,
    version: '1.1',
    prettyErrors: false,
    uniqueKeys: true,
  });
  const docs: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const documents: SourceDocument[] = [];
  for (const doc of docs) {
    const error = doc.errors[0];
    if (error !== undefined) {
      const pos = lineCounter.linePos(error.pos[0]);
      return {
        ok: false,
        line: pos.line,
        column: pos.col,
        message: error.message.split('\n')[0] ?? error.message,
      };
    }
    if (doc.contents === null) continue;
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
