/**
 * The hub's per-turn flush: subscribers that were offered frames wait in one list, and the whole
 * list is flushed once, later in the same event-loop turn (`setImmediate`), so a burst of updates
 * costs each subscriber one write, not one per update.
 *
 *   offer() ─▶ schedule(s) ─▶ [ s1 s2 s3 … ] ──setImmediate──▶ flush(): s.flush() for each
 *                               each at most once (`scheduled`)
 *
 * Invariant: a subscriber is in the list at most once, and `scheduled` is true exactly while it
 * is there. It also remembers the last join of the flush (see {@link FlushQueue.join}).
 */
import { concatFrames, type Frame } from "./frame.ts";

/** What the flush needs of a subscriber. */
export interface Flushable {
  scheduled: boolean;
  flush(): void;
}

export class FlushQueue {
  #pending: Flushable[] = [];
  #flushScheduled = false;
  #joined: readonly Frame[] | undefined;
  #joinedBytes: Buffer | undefined;

  /** Flushes `subscriber` once, later in this event-loop turn. */
  schedule(subscriber: Flushable): void {
    subscriber.scheduled = true;
    this.#pending.push(subscriber);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flush);
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
    for (const subscriber of pending) {
      subscriber.scheduled = false;
      subscriber.flush();
    }
    this.#joined = undefined;
    this.#joinedBytes = undefined;
  };
}
