// A memo with bounds, for verdicts that depend only on a string (an image reference under one
// rule): at most `maxEntries` kept, cleared whole when full (a cluster runs few distinct values, so
// a clear costs a few recomputations), and no key longer than `maxKeyLength` kept at all, since a
// key is a string from the request and would otherwise hold a 3 MiB field alive after it.

export class BoundedCache<V> {
  readonly #entries = new Map<string, V>();

  constructor(
    readonly maxEntries: number,
    readonly maxKeyLength: number,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** The cached value for `key`, or `compute(key)`, kept when the key is short enough. */
  get(key: string, compute: (key: string) => V): V {
    const cached = this.#entries.get(key);
    if (cached !== undefined) return cached;
    const value = compute(key);
    if (key.length <= this.maxKeyLength) {
      if (this.#entries.size >= this.maxEntries) this.#entries.clear();
      this.#entries.set(key, value);
    }
    return value;
  }
}
