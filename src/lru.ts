/**
 * A least-recently-used map with a fixed bound. A `Map` keeps insertion order, so a hit is
 * moved to the end and the first key is the least recently used one.
 *
 *   oldest ─▶ [k1 k2 k3 … kN] ◀─ newest      set() at N = maxSize evicts k1 first
 *
 * Invariant: `size <= maxSize` after every call.
 */
export class LruCache<K, V> {
  readonly maxSize: number;
  readonly #map = new Map<K, V>();

  constructor(maxSize: number) {
    if (!Number.isSafeInteger(maxSize) || maxSize < 1) {
      throw new RangeError("an LRU cache needs maxSize ≥ 1");
    }
    this.maxSize = maxSize;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    if (this.#map.has(key)) this.#map.delete(key);
    else if (this.#map.size >= this.maxSize) {
      this.#map.delete(this.#map.keys().next().value as K);
    }
    this.#map.set(key, value);
  }

  delete(key: K): void {
    this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }
}
