/**
 * The in-memory history: the most recent updates, bounded by count and by bytes, with an index
 * from id to position so that a resume finds its place in O(1).
 *
 *   ring:  [ oldest … newest ]  stored in a fixed array, `head` is the oldest slot
 *   seq:     first … first+count-1   (monotonic; positions never reused)
 *   index:   id → seq, for exactly the updates still in the ring
 *
 * Invariant: `index` holds an id if and only if its update is in the ring, so an id that is not
 * in `index` has either never been seen or has been evicted; both answer "unknown", and the
 * subscriber is told `earliest` rather than given a silent partial window.
 */
import { CrierError } from "../errors.ts";
import { integerOption, knownKeys, objectArgument } from "../options.ts";
import { sealUpdate, type Update, type UpdateFields } from "../update.ts";

/** Bounds of a {@link MemoryHistory}. The oldest updates are evicted first when either is hit. */
/** Defaults of {@link MemoryHistoryOptions}. */
export const HISTORY_DEFAULTS = { maxEvents: 10_000, maxBytes: 32 * 1024 * 1024 } as const;

/** The most updates an in-memory history keeps. */
export const MAX_HISTORY_EVENTS = 10_000_000;

export interface MemoryHistoryOptions {
  /** Most updates kept. Default 10,000. `0` keeps none (resume then always answers `earliest`). */
  readonly maxEvents?: number | undefined;
  /** Most bytes of encoded updates kept. Default 32 MiB. */
  readonly maxBytes?: number | undefined;
}

export class MemoryHistory {
  readonly maxEvents: number;
  readonly maxBytes: number;
  readonly #ring: (Update | undefined)[];
  readonly #index = new Map<string, number>();
  // A per-process prefix, ordered across restarts, so ids of an earlier process are unknown here.
  readonly #epoch = Date.now().toString(36);
  #head = 0;
  #count = 0;
  #firstSeq = 0;
  #bytes = 0;

  constructor(options: MemoryHistoryOptions = {}) {
    objectArgument(options, "history must be an object { maxEvents?, maxBytes? }");
    knownKeys(options, ["maxEvents", "maxBytes"], "history");
    this.maxEvents = integerOption(
      "history.maxEvents",
      options.maxEvents,
      HISTORY_DEFAULTS.maxEvents,
      0,
      // The ring is allocated whole: as `--history-size` allows.
      MAX_HISTORY_EVENTS,
    );
    this.maxBytes = integerOption("history.maxBytes", options.maxBytes, HISTORY_DEFAULTS.maxBytes);
    this.#ring = new Array<Update | undefined>(this.maxEvents);
  }

  /** Updates held now. */
  get size(): number {
    return this.#count;
  }

  /** Encoded bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The newest id, if any. */
  get lastEventId(): string | undefined {
    return this.#count === 0 ? undefined : this.#at(this.#count - 1).id;
  }

  /**
   * Assigns the update its id (the publisher's, or a generated ordered one), encodes it and
   * appends it, evicting the oldest as the bounds require. Throws `CRIER_ERR_DUPLICATE_ID` when a
   * publisher-supplied id is still in the history: two events with one id would make resume
   * ambiguous.
   */
  append(fields: UpdateFields): Update {
    const seq = this.#firstSeq + this.#count;
    let id = fields.id;
    if (id === undefined) {
      // A fragment, as Mercure asks of a hub's own ids; no publisher id starts with `#`.
      id = `#${this.#epoch}-${seq}`;
    } else if (this.#index.has(id)) {
      throw new CrierError("CRIER_ERR_DUPLICATE_ID", `an update with id "${id}" already exists`);
    }
    const update = sealUpdate(fields, id);
    if (this.maxEvents === 0 || update.bytes.length > this.maxBytes) {
      // Too big to keep: it is delivered live but cannot be resumed past. Keep the sequence
      // moving so that older ids resolve to "unknown" rather than to a window missing this one.
      this.#clear(seq + 1);
      return update;
    }
    while (this.#count === this.maxEvents || this.#bytes + update.bytes.length > this.maxBytes) {
      this.#evictOldest();
    }
    this.#ring[(this.#head + this.#count) % this.maxEvents] = update;
    this.#count++;
    this.#bytes += update.bytes.length;
    this.#index.set(id, seq);
    return update;
  }

  /**
   * The updates after `lastEventId`, oldest first; `[]` when it is the newest; `undefined` when
   * the id is unknown or evicted. The special id `earliest` replays everything held.
   */
  after(lastEventId: string): Update[] | undefined {
    if (lastEventId === "earliest") return this.#slice(0);
    const seq = this.#index.get(lastEventId);
    if (seq === undefined) return undefined;
    return this.#slice(seq - this.#firstSeq + 1);
  }

  #slice(from: number): Update[] {
    const out = new Array<Update>(this.#count - from);
    for (let i = from; i < this.#count; i++) out[i - from] = this.#at(i);
    return out;
  }

  #at(offset: number): Update {
    const update = this.#ring[(this.#head + offset) % this.maxEvents];
    if (update === undefined) throw new Error("history ring corrupted");
    return update;
  }

  #evictOldest(): void {
    const oldest = this.#at(0);
    this.#ring[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.maxEvents;
    this.#count--;
    this.#firstSeq++;
    this.#bytes -= oldest.bytes.length;
    this.#index.delete(oldest.id);
  }

  #clear(nextSeq: number): void {
    this.#ring.fill(undefined);
    this.#index.clear();
    this.#head = 0;
    this.#count = 0;
    this.#bytes = 0;
    this.#firstSeq = nextSeq;
  }
}
