// JSON as CEL sees it, converted only where an expression reaches it. The API server types a whole
// JSON number as a CEL `int` (from the schema); cel-js would take a JS number for a `double`, so
// whole numbers become BigInt. Converting a whole request up front cost far more than the
// expressions that read three of its fields, so (like the API server's own unstructured values) a
// JSON object becomes a JsonMap: a read-only Map over the parsed object that converts a field when
// it is read, once. A list is converted when it is read, one level deep: its objects become
// JsonMaps in turn. No conversion ever reads more than the request holds (bounded by its size) or
// copies a field no expression read.

/** The CEL value of a JSON value: whole numbers as int, objects as JsonMap, lists shallowly. */
export function toCel(value: unknown): unknown {
  switch (typeof value) {
    case 'number':
      return Number.isInteger(value) ? BigInt(value) : value;
    case 'object':
      if (value === null) return null;
      if (value instanceof JsonMap) return value;
      if (Array.isArray(value)) return value.map(toCel);
      return new JsonMap(value);
    default:
      return value;
  }
}

/**
 * A JSON object as a CEL map. A Map, not a plain object, because a JSON key may be any string: on a
 * plain object `__proto__` would be lost and `constructor` would shadow what cel-js types a value
 * by. It never changes: `set`, `delete` and `clear` are bugs and throw.
 */
export class JsonMap extends Map<unknown, unknown> {
  readonly #raw: object;
  /** Every field converted and stored in the Map itself, in the object's order. */
  #complete = false;

  constructor(raw: object) {
    super();
    this.#raw = raw;
  }

  override get(key: unknown): unknown {
    const cached = super.get(key);
    if (cached !== undefined || this.#complete || typeof key !== 'string') return cached;
    const raw: unknown = Object.hasOwn(this.#raw, key) ? Reflect.get(this.#raw, key) : undefined;
    if (raw === undefined) return undefined;
    const value = toCel(raw);
    super.set(key, value);
    return value;
  }

  override has(key: unknown): boolean {
    return this.get(key) !== undefined;
  }

  /** How many fields; a JS field holding `undefined` (never in parsed JSON) is no field. */
  get fieldCount(): number {
    if (this.#complete) return super.size;
    let count = 0;
    for (const key of Object.keys(this.#raw)) if (Reflect.get(this.#raw, key) !== undefined) count++;
    return count;
  }

  override keys(): MapIterator<unknown> {
    this.#convertAll();
    return super.keys();
  }

  override values(): MapIterator<unknown> {
    this.#convertAll();
    return super.values();
  }

  override entries(): MapIterator<[unknown, unknown]> {
    this.#convertAll();
    return super.entries();
  }

  override [Symbol.iterator](): MapIterator<[unknown, unknown]> {
    return this.entries();
  }

  override forEach(callback: (value: unknown, key: unknown, map: Map<unknown, unknown>) => void): void {
    this.#convertAll();
    super.forEach(callback);
  }

  override set(key: unknown): this {
    throw new TypeError(`a CEL value is read-only: cannot set ${String(key)}`);
  }

  override delete(key: unknown): boolean {
    throw new TypeError(`a CEL value is read-only: cannot delete ${String(key)}`);
  }

  override clear(): void {
    throw new TypeError('a CEL value is read-only: cannot clear it');
  }

  /** Converts every field (one level) for a read of the whole map, keeping the object's order. */
  #convertAll(): void {
    if (this.#complete) return;
    // Fields read before keep their values (and identity); all go in again in the object's order.
    const cached = super.size === 0 ? undefined : new Map(super.entries());
    super.clear();
    for (const key of Object.keys(this.#raw)) {
      const raw: unknown = Reflect.get(this.#raw, key);
      if (raw !== undefined) super.set(key, cached?.get(key) ?? toCel(raw));
    }
    this.#complete = true;
  }
}

// `size` is a Map accessor that TypeScript cannot override in a class: it answers fieldCount.
Object.defineProperty(JsonMap.prototype, 'size', {
  get(this: JsonMap) {
    return this.fieldCount;
  },
});
// cel-js types a value by its exact constructor (Map is a CEL map); a JsonMap is one.
Object.defineProperty(JsonMap.prototype, 'constructor', { value: Map });
