/**
 * The tail of the Redis backplane: one node's reader of the shared stream, on a connection of
 * its own, and the one place that knows what this node has delivered.
 *
 *   XREAD BLOCK from `position` ──▶ entry after `position`? ──▶ own update, or decode ──▶ deliver
 *   own publish acknowledged ──▶ right after `position`? ──yes──▶ deliver now (early)
 *                                                        └─no──▶ kept for the read above
 *
 * Invariant: `position` is the last entry this node delivered, in the stream of `epoch`; every
 * entry is delivered at most once and in stream order, whether the read or an acknowledgement
 * brings it. After a lost connection the tail resumes from `position` (never from `$`); a new
 * stream (new epoch) restarts it at the beginning, and a `position` the stream no longer holds
 * (lost in a failover) restarts it at the newest entry; both end the live streams through
 * `reset`, so that their clients resume and are told `earliest`.
 */
import {
  type Appended,
  decodeEntry,
  type Entry,
  isBefore,
  type Position,
  previousOf,
  type RawEntry,
  type RedisHistory,
} from "../history/redis.ts";
import type { Update } from "../update.ts";
import { waitAtMost } from "../within.ts";
import type { Availability } from "./availability.ts";
import { OwnUpdates } from "./own-updates.ts";
import type { RedisClient } from "./redis-connect.ts";

/** The longest wait between two attempts after a failure, ms. */
export const MAX_BACKOFF_MS = 1000;
/** Good reads in a row after which a reduced read COUNT is doubled again. */
const GROW_AFTER_READS = 16;

/** What the tail tells the backplane, which owns the connections and the events. */
export interface TailHost {
  readonly history: RedisHistory;
  /** The connection the tail reads on (XREAD BLOCK), and the one publishes use. */
  readonly tail: RedisClient;
  readonly commands: RedisClient;
  readonly availability: Availability;
  readonly closed: () => boolean;
  /** A stream entry that is not an update was skipped. */
  skipped(position: Position): void;
  /** The stream is a new one. */
  newEpoch(epoch: string): void;
  /** The last entry delivered here is gone from the stream (a failover lost it). */
  lost(position: Position): void;
  /** Entries after `after` and before `next` were trimmed before this node read them. */
  gap(after: Position, next: Position): void;
}

export class RedisTail {
  readonly #host: TailHost;
  readonly #blockMs: number;
  readonly #readCount: number;
  // The COUNT of the next read: halved after a read that failed (Redis drops a client whose
  // reply outgrows its output buffer limit, and the same read would fail forever), grown back
  // after a run of good reads.
  #count: number;
  #goodReads = 0;
  #deliver: ((update: Update) => void) | undefined;
  #reset: (() => void) | undefined;
  #epoch: string | undefined;
  #position: Position = "0-0";
  #lastId: string | undefined;
  // The stream's newest update when the tail started, until it delivers one or starts over.
  #newestAtStart: Update | undefined;
  // This node's publishes the tail has not reached yet (and that were not delivered early).
  readonly #own = new OwnUpdates<Position, Entry>(isBefore, (e) => e.update.bytes.length);
  #deliveredEarly = 0;
  #deliveredKept = 0;

  constructor(host: TailHost, blockMs: number, readCount: number) {
    this.#host = host;
    this.#blockMs = blockMs;
    this.#readCount = readCount;
    this.#count = readCount;
  }

  /** The epoch of the stream being delivered; undefined until the tail has started. */
  get epoch(): string | undefined {
    return this.#epoch;
  }

  /** The last entry delivered here. */
  get position(): Position {
    return this.#position;
  }

  /** The id of the last update delivered here, if any since the start or the last reset. */
  get lastId(): string | undefined {
    return this.#lastId;
  }

  /**
   * The newest update stored when the tail started (see `Backplane.newestAtStart`); `undefined`
   * once the tail has started over (a new epoch, a lost position).
   */
  get newestAtStart(): Update | undefined {
    return this.#newestAtStart;
  }

  /** How this node's own publishes were delivered (see `RedisBackplane.ownDelivered`). */
  get ownDelivered(): { readonly early: number; readonly kept: number } {
    return { early: this.#deliveredEarly, kept: this.#deliveredKept };
  }

  /**
   * Finds the starting point once (calling `started`), then reads for as long as the backplane
   * is open; after a failure, checks that the stream is still the same one and resumes from the
   * last delivered position.
   */
  async run(
    deliver: (update: Update) => void,
    reset: (() => void) | undefined,
    started: () => void,
  ): Promise<void> {
    this.#deliver = deliver;
    this.#reset = reset;
    const host = this.#host;
    let backoff = 0;
    while (!host.closed()) {
      try {
        await Promise.all([ready(host.commands), ready(host.tail)]);
        if (this.#epoch === undefined) {
          const epoch = await host.history.epoch();
          const newest = await host.history.newest();
          this.#position = newest?.[0] ?? "0-0";
          const entry = newest && decodeEntry(newest);
          this.#newestAtStart = entry?.epoch === epoch ? entry.update : undefined;
          this.#epoch = epoch;
          started();
        } else if (!(await this.#checkEpoch())) {
          await this.#checkDelivered();
        }
        backoff = 0;
        await this.#read();
      } catch (err) {
        if (host.closed()) return;
        this.#count = Math.max(1, Math.floor(this.#count / 2));
        this.#goodReads = 0;
        host.availability.down(err as Error);
        backoff = Math.min(backoff + 100, MAX_BACKOFF_MS);
        await new Promise((resolve) => setTimeout(resolve, backoff));
      }
    }
  }

  /** Stops delivering (the backplane is closing). */
  stop(): void {
    this.#deliver = undefined;
  }

  /**
   * An own publish, acknowledged: delivered now when it is the very next entry after the last
   * one delivered here (nothing can come between them: the order every node sees is unchanged);
   * otherwise kept for the read, which delivers it in its turn without decoding it again.
   */
  acknowledged({ epoch, position, previous }: Appended, update: Update): void {
    if (this.#host.closed() || epoch !== this.#epoch) return;
    if (previous === this.#position) {
      this.#deliveredEarly++;
      this.#take(position, { position, epoch, update });
    } else if (isBefore(this.#position, position)) {
      this.#own.add(position, { position, epoch, update });
    }
  }

  async #read(): Promise<void> {
    const host = this.#host;
    const { stream } = host.history.keys;
    while (!host.closed()) {
      const from = this.#position;
      // With the read, and run by Redis right before it: is `from` still in the stream? XREAD
      // answers what follows a position whether or not the position is still there, so a
      // reader that fell more than the stream's length behind (trimmed past it) would go on
      // from the oldest entry left, over a gap no one was told of.
      const [held, read] = ((await host.tail
        .pipeline()
        .xrange(stream, from, from)
        .xread("COUNT", this.#count, "BLOCK", this.#blockMs, "STREAMS", stream, from)
        .exec()) ?? []) as [Error | null, unknown][];
      if (held === undefined || read === undefined) throw new Error("the read was not answered");
      if (held[0]) throw held[0];
      if (read[0]) throw read[0];
      const stillThere = (held[1] as RawEntry[]).length > 0;
      const reply = read[1] as [string, RawEntry[]][] | null;
      host.availability.up();
      if (this.#count < this.#readCount && ++this.#goodReads >= GROW_AFTER_READS) {
        this.#count = Math.min(this.#readCount, this.#count * 2);
        this.#goodReads = 0;
      }
      const entries = reply?.[0]?.[1] ?? [];
      const first = entries[0];
      // (Unless the entry read says it was appended right after `from`: `from` was trimmed
      // alone, say by --redis-max-age after a quiet spell, and nothing was missed.)
      if (first !== undefined && from !== "0-0" && !stillThere && previousOf(first) !== from) {
        // Gone from the stream, with entries after it: a new stream, trimmed, or lost in a
        // failover (each ends the live streams once; a lost position restarts at the newest).
        if (await this.#checkEpoch()) continue;
        if (await this.#isTrimmed(from)) {
          // A gap: the entries between `from` and the first one read were never delivered
          // here. The live streams are ended (as NATS does on a gap), their clients resume
          // with their last id and are answered `earliest`; the read goes on from here.
          host.gap(from, first[0]);
          this.#reset?.();
        } else if (this.#lastId !== undefined) {
          await this.#restartAtNewest(from);
          continue;
        }
      }
      for (const raw of entries) {
        if (host.closed()) return;
        const position = raw[0];
        // Delivered while this read was on its way: an own publish, at its acknowledgement.
        if (!isBefore(this.#position, position)) continue;
        const own = this.#own.take(position);
        if (own !== undefined) this.#deliveredKept++;
        const entry = own ?? decodeEntry(raw);
        if (entry !== undefined && entry.epoch !== this.#epoch) {
          if (await this.#checkEpoch()) break; // restarted: read the new stream from its start
        }
        this.#take(position, entry);
      }
    }
  }

  #take(position: Position, entry: Entry | undefined): void {
    this.#position = position;
    if (entry === undefined) {
      this.#host.skipped(position);
      return;
    }
    // An entry of a dead epoch left in the stream: delivered before, or never resumable.
    if (entry.epoch !== this.#epoch) return;
    this.#lastId = entry.update.id;
    this.#deliver?.(entry.update);
  }

  /** Switches to the stream's current epoch if it changed; true when it did. */
  async #checkEpoch(): Promise<boolean> {
    const epoch = await this.#host.history.epoch();
    if (epoch === this.#epoch) return false;
    this.#epoch = epoch;
    this.#position = "0-0";
    this.#lastId = undefined;
    this.#newestAtStart = undefined;
    this.#own.clear();
    this.#host.newEpoch(epoch);
    // The stream this node was delivering is gone: its live subscribers may have missed
    // updates, and are told so by being sent back to resume.
    this.#reset?.();
    return true;
  }

  /**
   * True when `position`, no longer in the stream, was trimmed (it is older than every entry
   * left); false when it is missing from within the stream: a failover lost it.
   */
  async #isTrimmed(position: Position): Promise<boolean> {
    const { tail, history } = this.#host;
    const [oldest] = (await tail.xrange(history.keys.stream, "-", "+", "COUNT", 1)) as RawEntry[];
    return oldest !== undefined && isBefore(position, oldest[0]);
  }

  // After a reconnection: is the last entry delivered here still in the stream? A failover to a
  // replica that had not received it loses it, and every entry this node read after it (they
  // all came from the old primary). The live subscribers hold updates the history no longer
  // has: they are sent back to resume, and their ids answer `earliest`. The tail restarts at the
  // new stream's newest entry: entries the new primary took while this node still read the old
  // one may lie before the lost position (another node switched first), and are part of the
  // gap the subscribers are told of.
  async #checkDelivered(): Promise<void> {
    const position = this.#position;
    if (this.#lastId === undefined || position === "0-0") return;
    const { tail, history } = this.#host;
    const { stream } = history.keys;
    // On the tail's connection: the one that reconnected, and that reads on from `position`.
    const [held] = (await tail.xrange(stream, position, position)) as RawEntry[];
    if (held !== undefined) return;
    // Trimmed away rather than lost: the next read finds it so (see #read) and says so.
    if (await this.#isTrimmed(position)) return;
    await this.#restartAtNewest(position);
  }

  // `position`, delivered here, was lost: the tail goes on from the newest entry, and the live
  // streams are sent back to resume (see #checkDelivered).
  async #restartAtNewest(position: Position): Promise<void> {
    const { tail, history } = this.#host;
    const [newest] = (await tail.xrevrange(
      history.keys.stream,
      "+",
      "-",
      "COUNT",
      1,
    )) as RawEntry[];
    this.#position = newest?.[0] ?? "0-0";
    this.#lastId = undefined;
    this.#newestAtStart = undefined;
    // Positions in the new primary's stream may repeat those of the lost entries.
    this.#own.clear();
    this.#host.lost(position);
    this.#reset?.();
  }
}

// Waits a little for a connection that is (re)connecting; its commands would fail at once.
async function ready(connection: RedisClient): Promise<void> {
  if (connection.status === "ready") return;
  let listener: (() => void) | undefined;
  const connected = new Promise<void>((resolve) => {
    listener = resolve;
    connection.once("ready", resolve);
  });
  await waitAtMost(connected, MAX_BACKOFF_MS);
  connection.off("ready", listener as () => void);
}
