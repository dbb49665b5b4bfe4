/**
 * The hub's flush: subscribers that were offered frames wait in one list, and the whole list is
 * flushed once, so a burst of updates costs each subscriber one write, not one per update.
 *
 *   offer() ─▶ schedule(s) ─▶ [ s1 s2 s3 … ] ──setImmediate / window──▶ flush(): s.flush() each
 *                               each at most once (`scheduled`)
 *
 * When the hub is idle the flush runs later in the same event-loop turn (`setImmediate`). The
 * flush window (`windowMs`) spaces flushes out under load: a flush never starts sooner than
 * `windowMs` after the previous one ended, and meanwhile the event loop goes on reading (and
 * answering) publishes, so a flush carries more updates per write. A flush is written at most
 * `windowMs` later than without the window, and an update after a quiet spell not later at all.
 *
 * Invariant: a subscriber is in the list at most once, and `scheduled` is true exactly while it
 * is there. It also remembers the last join of the flush (see {@link FlushQueue.join}).
 *
 * The list is also where the hub's own fan-out backlog lives (see {@link FanOutBacklog}): from
 * the first schedule of a turn to the end of its flush, updates have been accepted and not yet
 * written to the sockets that can take them. A subscriber whose own socket is backed up is not in
 * the list (it is flushed on `drain`), so one slow reader never counts here.
 */
import { concatFrames, type Frame } from "./frame.ts";

/** What the flush needs of a subscriber. */
export interface Flushable {
  scheduled: boolean;
  flush(): void;
}

/**
 * The hub's fan-out backlog now: updates accepted and offered to subscribers whose sockets can
 * take them, not yet written because the flush that writes them has not run. Zero between
 * flushes; it grows while the hub accepts updates faster than its flushes can start.
 */
export interface FanOutBacklog {
  /** Milliseconds since the oldest of these updates was offered; 0 when there is none. */
  readonly ageMs: number;
  /** How many updates. */
  readonly updates: number;
  /** Their encoded bytes, each update counted once (not once per subscriber). */
  readonly bytes: number;
}

export class FlushQueue {
  readonly #windowMs: number;
  #pending: Flushable[] = [];
  #flushScheduled = false;
  #joined: readonly Frame[] | undefined;
  #joinedBytes: Buffer | undefined;
  // The backlog of the flush to come: when its first subscriber was scheduled, and what it holds.
  #since = 0;
  #updates = 0;
  #bytes = 0;
  // Publishes held until the flush to come has run (see `flushed`).
  #waiting: (() => void)[] = [];
  // When the last flush ended (performance.now()), for the window.
  #lastEnded = Number.NEGATIVE_INFINITY;

  /** `windowMs`: the least time between the end of a flush and the start of the next; 0: none. */
  constructor(windowMs = 0) {
    this.#windowMs = windowMs;
  }

  /** Flushes `subscriber` once, later in this event-loop turn. */
  schedule(subscriber: Flushable): void {
    subscriber.scheduled = true;
    this.#pending.push(subscriber);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    const now = performance.now();
    this.#since = now;
    const wait = this.#lastEnded + this.#windowMs - now;
    if (wait >= 1) setTimeout(this.#flush, Math.ceil(wait));
    else setImmediate(this.#flush);
  }

  /**
   * Counts an update that has just been offered to every subscriber it goes to, once per update
   * (not per subscriber). It is part of the backlog when a flush is to come; otherwise every
   * subscriber it went to is backed up on its own socket (or there was none).
   */
  accepted(bytes: number): void {
    if (!this.#flushScheduled) return;
    this.#updates++;
    this.#bytes += bytes;
  }

  /** The fan-out backlog now (see {@link FanOutBacklog}). */
  get backlog(): FanOutBacklog {
    if (!this.#flushScheduled) return { ageMs: 0, updates: 0, bytes: 0 };
    return { ageMs: performance.now() - this.#since, updates: this.#updates, bytes: this.#bytes };
  }

  /** Resolves once the flush to come has written what it holds (at once when none is to come). */
  flushed(): Promise<void> {
    if (!this.#flushScheduled) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /**
   * Joins pending frames into one chunk. In a fan-out, consecutive subscribers of a flush usually
   * hold the very same frames (the updates of this turn on their topic): the last join is
   * remembered for the rest of the flush, and reused when the frames are the same objects in the
   * same order, so a fan-out copies each batch once, not once per subscriber.
   */
  join(frames: readonly Frame[], bytes: number): Buffer {
    const last = this.#joined;
    if (last !== undefined && last.length === frames.length && this.#joinedBytes !== undefined) {
      let same = true;
      for (let i = 0; i < frames.length && same; i++) same = frames[i] === last[i];
      if (same) return this.#joinedBytes;
    }
    const joined = concatFrames(frames, bytes);
    this.#joined = frames;
    this.#joinedBytes = joined;
    return joined;
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    this.#updates = 0;
    this.#bytes = 0;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const subscriber of pending) {
      subscriber.scheduled = false;
      subscriber.flush();
    }
    this.#joined = undefined;
    this.#joinedBytes = undefined;
    if (this.#windowMs > 0) this.#lastEnded = performance.now();
    for (const resolve of waiting) resolve();
  };
}
