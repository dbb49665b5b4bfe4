/**
 * One subscriber: its topic selectors, what it may receive, and a bounded queue of frames
 * waiting to be written to its connection.
 *
 *   hub ──offer()──▶ [ frame frame frame ]  ──flush(): one write per flush──▶ sink
 *                      ≤ maxEvents, ≤ maxBytes         (paused while the sink is backed up)
 *
 * Invariant: frames reach the sink in the order they were offered, after the replay backlog,
 * and nothing is written while the sink is backed up (`write()` returned false) until it
 * drains. When the queue would pass a bound the subscriber is disconnected (default) or the
 * frame is dropped; it never grows past its bounds. A paged replay (`Replay.more`) reads its
 * next page only once the last one is written, its unwritten page counts against `maxBytes`,
 * and live frames wait in the queue until the last page is out.
 *
 * Its parts, each in its own module: the write path (`sink.ts`), the replay on its way out
 * (`replay-backlog.ts`), when it ends on its own (`lifetime.ts`), its queue's bounds
 * (`queue-options.ts`) and what a caller hands it and gets back (`subscription.ts`). Their
 * types that the rest of the tree uses are exported from here too, where it has found them.
 */
import { randomUUID } from "node:crypto";
import { encodeComment } from "./encoder.ts";
import type { Frame } from "./frame.ts";
import { armExpiry, endAtTick } from "./lifetime.ts";
import { type OverflowPolicy, type QueueOptions, resolveQueueOptions } from "./queue-options.ts";
import { type Pages, ReplayBacklog } from "./replay-backlog.ts";
import { compileClaim, compileSelector, coversAny, type Selector } from "./selectors/selector.ts";
import { assertSink, isFrameSink, type Sink, writeBatch } from "./sink.ts";
import { type Access, assertAccess, type CloseReason, type Connection } from "./subscription.ts";
import type { Update } from "./update.ts";

export { STALLED_TICKS } from "./lifetime.ts";
export { type OverflowPolicy, type QueueOptions, resolveQueueOptions } from "./queue-options.ts";
export type { FrameSink, Sink } from "./sink.ts";
export type { CloseReason, Connection, SubscribeOptions, Subscription } from "./subscription.ts";

/**
 * The hub's side of a subscriber, given once at construction (no per-event callbacks). Internal:
 * the hub keeps its implementation private.
 */
export interface SubscriberHost {
  /** Asks for `flush()` to be called once later in this event-loop turn. */
  schedule(subscriber: Subscriber): void;
  /**
   * Joins a subscriber's pending frames into one chunk. The hub hands subscribers whose pending
   * frames are the same the same Buffer, so a fan-out copies each batch once, not once per
   * subscriber.
   */
  join(frames: readonly Frame[], bytes: number): Buffer;
  /** Reports a frame dropped under the `drop` policy. */
  dropped(subscriber: Subscriber): void;
  /** Reports that the subscriber ended; called exactly once. */
  closed(subscriber: Subscriber, reason: CloseReason): void;
  /** Reports an error its sink threw; the subscriber closes itself after. */
  failed(error: unknown): void;
  /**
   * Hub-wide write counters, added to once per write (a flush or a backlog chunk), never per
   * frame: `events` counts updates written (keep-alives and comments excluded), `bytes` every
   * byte handed to a sink.
   */
  readonly written: { events: number; bytes: number };
}

const OPEN_COMMENT = encodeComment();

export class Subscriber implements Connection {
  /** Unique id of this connection, a `urn:uuid:` URN (made when first asked for). */
  get id(): string {
    this.#id ??= `urn:uuid:${randomUUID()}`;
    return this.#id;
  }
  #id: string | undefined;
  /** The selectors as written (`source` of each of {@link selectors}). */
  readonly topics: readonly string[];
  readonly selectors: readonly Selector[];
  readonly authorized: readonly (string | Selector)[];
  readonly maxEvents: number;
  readonly maxBytes: number;
  readonly overflow: OverflowPolicy;
  /** Set by the hub while this subscriber waits in its flush list. */
  scheduled = false;
  /** Used by the hub to visit a subscriber once per update across several topics. */
  mark = 0;
  /** The timer that ends the subscription when its token expires (`lifetime.ts`), if any. */
  expiry: NodeJS.Timeout | undefined;

  readonly #sink: Sink;
  readonly #host: SubscriberHost;
  #queue: Frame[] = [];
  #queuedBytes = 0;
  // The replay still on its way out, ahead of the queue; none once it is all written.
  #replay: ReplayBacklog | undefined;
  #state: "pending" | "open" | "closed" = "pending";
  #blocked = false;
  // Ids still to arrive live that the client already has (see `Replay.skip`).
  #skip: Set<string> | undefined;
  #stalledTicks = 0;
  // Keep-alive frames in the queue, so a flush can count updates without looking at each frame.
  #keepAlives = 0;
  readonly #claims: readonly Selector[];
  readonly #endsAt: number | undefined;

  constructor(sink: Sink, host: SubscriberHost, access: Access, queue: QueueOptions = {}) {
    assertSink(sink);
    assertAccess(access);
    this.#sink = sink;
    this.#host = host;
    // Throws CRIER_ERR_BAD_REQUEST for an invalid selector, before anything is registered.
    this.selectors = access.topics.map(compileSelector);
    this.topics = this.selectors.map((selector) => selector.source);
    this.authorized = access.authorized ?? [];
    this.#claims = this.authorized.map((c) => (typeof c === "string" ? compileClaim(c) : c));
    ({
      maxEvents: this.maxEvents,
      maxBytes: this.maxBytes,
      overflow: this.overflow,
    } = resolveQueueOptions(queue));
    if (access.expiresAt !== undefined) armExpiry(this, access.expiresAt);
    this.#endsAt = access.endsAt;
  }

  get closed(): boolean {
    return this.#state === "closed";
  }

  /**
   * Frames and bytes waiting now (the unwritten part of a replay page included); never more
   * than the bounds.
   */
  get queued(): { readonly events: number; readonly bytes: number } {
    return { events: this.#queue.length, bytes: this.#queuedBytes + this.#pageBytes() };
  }

  /** True when the update is private and this subscriber is not authorized for any of its topics. */
  isDenied(update: Update): boolean {
    return update.private && !coversAny(this.#claims, update.topics);
  }

  /** True when the subscription selects the update and may see it (used for replays). */
  wants(update: Update): boolean {
    return coversAny(this.selectors, update.topics) && !this.isDenied(update);
  }

  /** Queues a frame, applying the overflow policy at the bound. */
  offer(frame: Frame): void {
    if (this.#state === "closed") return;
    if (this.#skip !== undefined && this.#state === "open" && this.#skipped(frame)) return;
    const size = frame.bytes.length;
    if (
      this.#queue.length >= this.maxEvents ||
      this.#queuedBytes + this.#pageBytes() + size > this.maxBytes
    ) {
      if (this.overflow === "drop") this.#host.dropped(this);
      else this.close("overflow");
      return;
    }
    this.#queue.push(frame);
    this.#queuedBytes += size;
    if (!this.scheduled && this.#state === "open" && !this.#blocked) this.#host.schedule(this);
  }

  /**
   * Sends the response head, the opening comment (so the client's `open` fires at once) and the
   * replayed updates, followed by whatever was offered meanwhile minus what the replay already
   * holds. Until then, offered frames wait in the queue. `more` gives the replay's next pages
   * (see `Replay.more`); they are filtered like `replay` was, with {@link wants}.
   */
  open(
    headers: Readonly<Record<string, string>>,
    replay: readonly Update[],
    skip?: ReadonlySet<string> | undefined,
    more?: Pages | undefined,
  ): void {
    if (this.#state !== "pending") return;
    if (skip !== undefined && skip.size > 0) this.#skip = new Set(skip);
    if ((replay.length > 0 || this.#skip !== undefined) && this.#queue.length > 0) {
      const replayed = new Set(replay.map((update) => update.id));
      this.#queue = this.#queue.filter(
        (frame) => !replayed.has(frame.id as string) && !this.#skipped(frame),
      );
      this.#queuedBytes = this.#queue.reduce((sum, frame) => sum + frame.bytes.length, 0);
    }
    // Open only once the head is out: a head the transport refuses leaves it pending, and a
    // pending subscriber is dropped, not ended, when it closes.
    this.#sink.start(headers);
    this.#state = "open";
    this.#blocked = !this.#sink.write(OPEN_COMMENT);
    this.#host.written.bytes += OPEN_COMMENT.length;
    if (replay.length > 0 || more !== undefined) this.#replay = new ReplayBacklog(replay, more);
    this.flush();
  }

  /** Writes the backlog and then the queue, one write for the queue, until the sink backs up. */
  flush(): void {
    if (this.#state !== "open") return;
    try {
      this.#write();
    } catch (err) {
      this.#broken(err);
    }
  }

  #write(): void {
    if (this.#replay !== undefined && !this.#flushReplay()) return;
    if (this.#queue.length === 0) return;
    const queue = this.#queue;
    const bytes = this.#queuedBytes;
    const written = this.#host.written;
    written.events += queue.length - this.#keepAlives;
    written.bytes += bytes;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#keepAlives = 0;
    this.#blocked = !writeBatch(this.#sink, queue, bytes, this.#host);
  }

  // A sink that throws (one given to `hub.connect` by an app) is reported and dropped, and the
  // flush goes on to the next subscriber: one broken sink never stops the others' updates.
  #broken(err: unknown): void {
    this.#host.failed(err);
    this.#blocked = true; // so close() drops the connection rather than writing to it again
    this.close("closed");
  }

  /** The sink can take more bytes. */
  drained(): void {
    this.#blocked = false;
    this.#stalledTicks = 0;
    this.flush();
  }

  /**
   * Called by the hub once per keep-alive interval: queues the keep-alive, unless the
   * subscription ends now (`lifetime.ts`). A connection that has not drained for
   * `STALLED_TICKS` intervals in a row is disconnected: a client that stopped reading on a quiet
   * topic would otherwise hold its connection (and a place under the subscriber cap) until
   * thousands of keep-alives filled its queue.
   */
  tick(keepAlive: Frame): void {
    const end = endAtTick(this.#blocked ? ++this.#stalledTicks : 0, this.#endsAt);
    if (end !== undefined) {
      this.close(end);
      return;
    }
    const before = this.#queue.length;
    this.offer(keepAlive);
    if (this.#queue.length > before) this.#keepAlives++;
  }

  /** The peer went away (see {@link Connection.gone}). */
  gone(reason: "client" | "stalled" = "client"): void {
    this.close(reason);
  }

  /**
   * Ends the subscription. `shutdown`, `closed`, `expired` and `reset` end the stream gracefully:
   * what is queued (offered, not yet flushed: an update published in the turn the hub closes)
   * is written first, then an optional final frame (a retry hint); `overflow` drops the
   * connection at once, so a stalled client holds no more memory. Idempotent, and never throws:
   * a sink that throws while being ended is reported (it may be ended from a keep-alive timer, a
   * publish's fan-out or the hub's close, none of which may stop for it).
   */
  close(reason: CloseReason = "closed", last?: Buffer | undefined): void {
    if (this.#state === "closed") return;
    const wasOpen = this.#state === "open";
    // A backed-up connection cannot take a graceful ending either: it is dropped, so that a
    // client that stopped reading does not keep its socket open after the subscription ended.
    // An in-process consumer's bound is its own memory's: it takes what is queued, and ends.
    let graceful =
      wasOpen &&
      (!this.#blocked || isFrameSink(this.#sink)) &&
      reason !== "overflow" &&
      reason !== "stalled" &&
      reason !== "client";
    // Closed first: a sink that reports its peer gone during the writes below (or anything else
    // that would end the subscription) finds it ended, so it ends once and is counted once.
    this.#state = "closed";
    try {
      // Not behind a replay still being paged in: the client resumes after the last update it
      // got, so live updates written past a gap would be skipped on its return.
      if (graceful && this.#replay === undefined) this.#write();
    } catch (err) {
      this.#host.failed(err);
      graceful = false;
    }
    clearTimeout(this.expiry);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#keepAlives = 0;
    this.#replay = undefined;
    try {
      if (graceful) {
        if (last !== undefined) this.#sink.write(last);
        this.#sink.end();
      } else {
        this.#sink.destroy(reason);
      }
    } catch (err) {
      this.#host.failed(err);
    }
    this.#host.closed(this, reason);
  }

  #pageBytes(): number {
    return this.#replay === undefined ? 0 : this.#replay.pageBytes;
  }

  // Writes the replay until the sink backs up; true once it is all out and the queue may follow.
  // Live frames wait behind the rest of a paged replay: its next page is asked for (only as many
  // bytes as the queue has free: the page counts against the bound).
  #flushReplay(): boolean {
    let replay = this.#replay;
    while (replay !== undefined && !this.#blocked && replay.writing) {
      this.#blocked = !replay.writeChunk(this.#sink, this.#host.written);
      replay = this.#replay;
    }
    if (this.#blocked || replay === undefined) return false;
    if (!replay.done) {
      replay.readNext(Math.max(1, this.maxBytes - this.#queuedBytes), this);
      return false;
    }
    this.#replay = undefined;
    return true;
  }

  // True (and forgotten) when the frame is one the resume said to skip; the set empties as its
  // ids arrive, and is dropped then, so only a resumed subscriber ever pays for the check.
  #skipped(frame: Frame): boolean {
    const skip = this.#skip;
    if (skip === undefined || frame.id === undefined || !skip.delete(frame.id)) return false;
    if (skip.size === 0) this.#skip = undefined;
    return true;
  }
}
