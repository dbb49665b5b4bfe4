/**
 * The updates a node published that its reader has not reached yet, by position in the shared
 * stream: when the reader comes to one, it takes the update from here instead of decoding the
 * entry it read back (the same update, already sealed and encoded once).
 *
 *   publish acknowledged, not delivered early ──add(position)──▶ [ p1 p4 p9 … ] (oldest first)
 *   reader at position p ──take(p)──▶ entries at or before p leave; the one at p is returned
 *
 * Invariant: at most `max` entries of at most `maxBytes` in all, none at or before a position
 * the reader has passed (each `take` drops those first). An entry the reader never reaches
 * (trimmed before it read it, lost in a failover, a new stream) leaves with the next `take` past
 * it, or with `clear`.
 */
export class OwnUpdates<P, V> {
  readonly #entries = new Map<P, V>();
  readonly #before: (a: P, b: P) => boolean;
  readonly #bytesOf: (value: V) => number;
  readonly #max: number;
  readonly #maxBytes: number;
  #bytes = 0;

  /**
   * `before(a, b)`: `a` comes before `b` in the stream. `bytesOf`: what a value weighs. At most
   * `max` entries (default 4,096) and `maxBytes` (default 8 MiB) are kept.
   */
  constructor(
    before: (a: P, b: P) => boolean,
    bytesOf: (value: V) => number,
    max = 4096,
    maxBytes = 8 * 1024 * 1024,
  ) {
    this.#before = before;
    this.#bytesOf = bytesOf;
    this.#max = max;
    this.#maxBytes = maxBytes;
  }

  /**
   * Keeps `value` for the reader; past either bound it is not kept (the reader decodes the entry
   * instead, as it does another node's).
   */
  add(position: P, value: V): void {
    const bytes = this.#bytesOf(value);
    if (this.#entries.size >= this.#max || this.#bytes + bytes > this.#maxBytes) return;
    if (this.#entries.has(position)) return;
    this.#entries.set(position, value);
    this.#bytes += bytes;
  }

  /**
   * The value kept for `position`, if any; drops it and every entry before it. Entries come in
   * (about) stream order, so this looks at the first few only.
   */
  take(position: P): V | undefined {
    if (this.#entries.size === 0) return undefined;
    for (const [kept, value] of this.#entries) {
      if (this.#before(position, kept)) return undefined;
      this.#entries.delete(kept);
      this.#bytes -= this.#bytesOf(value);
      if (kept === position) return value;
    }
    return undefined;
  }

  /** Drops every entry (the stream was replaced, or entries were lost). */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  /** How many entries are kept. */
  get size(): number {
    return this.#entries.size;
  }
}
