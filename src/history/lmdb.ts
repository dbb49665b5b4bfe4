/**
 * The history file: the most recent updates in an LMDB file, bounded by count, bytes and age
 * like the in-memory history, shared safely by every process that opens the same file.
 *
 *   meta     format → 1   epoch → "<ms base36><random>"   state → { first, next, bytes }
 *   updates  seq → { i: id, t, d, y?, r?, p?, ts, n: encoded bytes }   for first ≤ seq < next
 *   ids      id → seq   for every id that is not "#<epoch>-<its seq>" (publishers' ids)
 *
 * Invariant: an id resolves to a seq only while the entry at that seq holds that very id, so an
 * evicted id, an id of an earlier file (another epoch) or an unknown one answers "unknown", and
 * the subscriber is told `earliest` rather than given a silent partial window. Every append is
 * one write transaction (LMDB serializes writers across processes), so seqs are one order for
 * all of them.
 */
import { statSync } from "node:fs";
import type { Database, RootDatabase } from "lmdb";
import { CrierError } from "../errors.ts";
import { integerOption } from "../options.ts";
import { sealUpdate, type Update, type UpdateFields } from "../update.ts";
import { FILE_DEFAULTS } from "./file-defaults.ts";
import { HISTORY_DEFAULTS } from "./memory.ts";

/** The format this version writes and reads; a file of a newer one is refused. */
export const FORMAT = 1;

/** Bounds of a {@link LmdbHistory}. The oldest updates are evicted first when any is hit. */
export interface LmdbHistoryOptions {
  /** Most updates kept. Default 10,000. `0` keeps none (resume then always answers `earliest`). */
  readonly maxEvents?: number | undefined;
  /** Most bytes of encoded updates kept. Default 32 MiB. */
  readonly maxBytes?: number | undefined;
  /** Updates older than this many ms are evicted. Default 0: no age limit. */
  readonly maxAgeMs?: number | undefined;
}

interface State {
  first: number;
  next: number;
  bytes: number;
}

interface Entry {
  i: string;
  t: string[];
  d: string;
  y?: string;
  r?: number;
  p?: 1;
  ts: number;
  n: number;
}

/** What an append did: the update and its seq, or a refusal of a duplicate id. */
export type Appended = { update: Update; seq: number } | { duplicate: string };

/** The stored history over an open LMDB environment (see `backplane/file.ts` for opening it). */
export class LmdbHistory {
  readonly maxEvents: number;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  readonly epoch: string;
  readonly #env: RootDatabase;
  readonly #meta: Database<unknown, string>;
  readonly #updates: Database<Entry, number>;
  readonly #ids: Database<number, string>;

  constructor(env: RootDatabase, path: string, options: LmdbHistoryOptions = {}) {
    this.maxEvents = integerOption(
      "history.maxEvents",
      options.maxEvents,
      HISTORY_DEFAULTS.maxEvents,
    );
    this.maxBytes = integerOption("history.maxBytes", options.maxBytes, HISTORY_DEFAULTS.maxBytes);
    this.maxAgeMs = integerOption("history.maxAgeMs", options.maxAgeMs, FILE_DEFAULTS.maxAgeMs);
    assertWhole(env, path);
    this.#env = env;
    this.#meta = env.openDB<unknown, string>({ name: "meta", encoding: "json" });
    this.#updates = env.openDB<Entry, number>({ name: "updates", encoding: "json" });
    this.#ids = env.openDB<number, string>({ name: "ids", encoding: "json" });
    // The first process to open a new file gives it its format and epoch; the others read them.
    this.epoch = env.transactionSync(() => {
      const format = this.#meta.get("format");
      if (format === undefined) {
        const epoch = Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
        this.#meta.putSync("format", FORMAT);
        this.#meta.putSync("epoch", epoch);
        this.#meta.putSync("state", { first: 0, next: 0, bytes: 0 } satisfies State);
        return epoch;
      }
      if (typeof format !== "number" || format > FORMAT) {
        throw new CrierError(
          "CRIER_ERR_INVALID_OPTION",
          `history file ${path} is of format ${JSON.stringify(format)}, written by a newer version; this one reads format ${FORMAT}: upgrade, or give another file`,
        );
      }
      return String(this.#meta.get("epoch"));
    });
  }

  /** The committed state, read from the latest snapshot (other processes may have written). */
  state(): Readonly<State> {
    return this.#meta.get("state") as State;
  }

  /** Updates held now (age-expired ones not yet evicted included). */
  get size(): number {
    const s = this.state();
    return s.next - s.first;
  }

  /** The update at `seq`, or `undefined` when it is not held. */
  at(seq: number): Update | undefined {
    const entry = this.#updates.get(seq);
    return entry === undefined ? undefined : decode(entry);
  }

  /**
   * Appends, in the current write batch: assigns the update its id (the publisher's, or
   * `#<epoch>-<seq>`, a fragment as Mercure asks of a hub's own ids) and evicts the oldest as the bounds require. Resolves once committed.
   * `onSeq` runs inside the transaction, before the commit.
   */
  append(fields: UpdateFields, onSeq: (seq: number, update: Update) => void): Promise<Appended> {
    return this.#env.transaction(() => {
      const s = { ...this.state() };
      const seq = s.next;
      let id = fields.id;
      if (id === undefined) {
        // No publisher id starts with `#` (validateUpdate), so this one is free.
        id = `#${this.epoch}-${seq}`;
      } else if (this.#held(id, s) !== undefined) {
        return { duplicate: id };
      }
      const update = sealUpdate(fields, id);
      const size = update.bytes.length;
      onSeq(seq, update);
      if (this.maxEvents === 0 || size > this.maxBytes) {
        // Too big to keep: delivered live, never resumable past; older ids answer "unknown".
        while (s.first < s.next) this.#evict(s);
        s.first = s.next = seq + 1;
        this.#meta.putSync("state", s);
        return { update, seq };
      }
      const expired = this.maxAgeMs > 0 ? Date.now() - this.maxAgeMs : -1;
      while (
        s.next - s.first >= this.maxEvents ||
        (s.next > s.first && s.bytes + size > this.maxBytes) ||
        (s.next > s.first && (this.#updates.get(s.first)?.ts ?? -1) < expired)
      ) {
        this.#evict(s);
      }
      this.#updates.putSync(seq, encode(update, size));
      if (id !== `#${this.epoch}-${seq}`) this.#ids.putSync(id, seq);
      s.next = seq + 1;
      s.bytes += size;
      this.#meta.putSync("state", s);
      return { update, seq };
    });
  }

  /**
   * The updates after `lastEventId` up to (not including) seq `upTo`, oldest first; `undefined`
   * when the id is unknown, evicted or older than `maxAgeMs`. `earliest` replays all held.
   */
  after(lastEventId: string, upTo: number): Update[] | undefined {
    const s = this.state();
    const expired = this.maxAgeMs > 0 ? Date.now() - this.maxAgeMs : -1;
    let from = s.first;
    if (lastEventId !== "earliest") {
      const seq = this.#held(lastEventId, s);
      if (seq === undefined || (this.#updates.get(seq)?.ts ?? -1) < expired) return undefined;
      from = seq + 1;
    }
    const out: Update[] = [];
    for (const { value } of this.#updates.getRange({ start: from, end: Math.min(upTo, s.next) })) {
      if (value.ts >= expired) out.push(decode(value));
    }
    return out;
  }

  /** The seq of `id` while the history holds it, else `undefined`. */
  seqOf(id: string): number | undefined {
    return this.#held(id, this.state());
  }

  // The seq of `id` when the entry there still holds it.
  #held(id: string, s: Readonly<State>): number | undefined {
    let seq = this.#ids.get(id);
    if (seq === undefined && id.startsWith(`#${this.epoch}-`)) {
      const rest = id.slice(this.epoch.length + 2);
      if (/^\d{1,15}$/.test(rest)) seq = Number(rest);
    }
    if (seq === undefined || seq < s.first || seq >= s.next) return undefined;
    return this.#updates.get(seq)?.i === id ? seq : undefined;
  }

  #evict(s: State): void {
    const oldest = this.#updates.get(s.first);
    if (oldest !== undefined) {
      this.#updates.removeSync(s.first);
      if (this.#ids.get(oldest.i) === s.first) this.#ids.removeSync(oldest.i);
      s.bytes -= oldest.n;
    }
    s.first++;
  }
}

// A file cut short (a copy interrupted, a disk that filled while it was written) would make LMDB
// read past its end, which kills the process (SIGBUS) instead of failing: refused before any
// page is read. LMDB's meta page says where the last page in use ends.
function assertWhole(env: RootDatabase, path: string): void {
  const { lastPageNumber, pageSize } = env.getStats() as {
    lastPageNumber: number;
    pageSize: number;
  };
  const needed = (lastPageNumber + 1) * pageSize;
  const size = statSync(path).size;
  if (size < needed) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `history file ${path} is truncated (${size} bytes, its pages end at ${needed}): restore it from a copy, or remove it and start an empty history`,
    );
  }
}

function encode(update: Update, size: number): Entry {
  const e: Entry = { i: update.id, t: [...update.topics], d: update.data, ts: Date.now(), n: size };
  if (update.type !== undefined) e.y = update.type;
  if (update.retry !== undefined) e.r = update.retry;
  if (update.private) e.p = 1;
  return e;
}

function decode(e: Entry): Update {
  const fields = { topics: e.t, data: e.d, type: e.y, retry: e.r, private: e.p === 1 };
  return sealUpdate(fields, e.i);
}
