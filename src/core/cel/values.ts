// JSON as CEL sees it. The API server types a whole JSON number as a CEL `int` (from the schema);
// cel-js would take a JS number for a `double`, so whole numbers become BigInt. Everything else is
// copied as it is: objects are CEL maps, arrays lists.

export function toCel(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCel);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[key] = toCel(v);
    return out;
  }
  return value;
}
