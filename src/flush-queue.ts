/**
 * The hub's flush: subscribers that were offered frames wait in one list, and the list is
 * flushed in order, so a burst of updates costs each subscriber one write, not one per update.
 *
 *   offer() ─▶ schedule(s) ─▶ [ s1 s2 s3 … ] ──setImmediate / window──▶ flush: s.flush() each
 *                               each at most once (`scheduled`)        in slices of ≤ SLICE_MS
 *                                                                      (SHORT_SLICE_MS while a
 *                                                                      publish awaits its engine)
 *
 * When the hub is idle the flush runs later in the same event-loop turn (`setImmediate`). The
 * flush window (`windowMs`) spaces flushes out under load: a flush never starts sooner than
 * `windowMs` after the previous one ended, and meanwhile the event loop goes on reading (and
 * answering) publishes, so a flush carries more updates per write. A flush is written at most
 * `windowMs` later than without the window, and an update after a quiet spell not later at all.
 *
 * A flush writes to the subscribers that were in the list when it started, in slices: after
 * `SLICE_MS` (10 ms) of writing it yields to the event loop (`setImmediate`) and goes on in the next turn.
 * One write per subscriber costs a system call, so at 10,000 subscribers a flush takes about a
 * tenth of a second; between slices the hub reads and answers publishes, and an update accepted
 * meanwhile rides along in the same flush for every subscriber not yet written to (the others
 * are in the list again, for the next flush). Order per subscriber is its queue's: unchanged.
 * While a publish waits for the backplane's answer (an engine's round trip), slices last
 * `SHORT_SLICE_MS` instead: the answer is read a millisecond or so after its arrival,
 * so its publisher is not kept waiting by the rest of the flush (on an engine, a publisher's
 * next publish waits for that answer), and the update rides along as above.
 *
 * Invariant: a subscriber is in the list at most once, and `scheduled` is true exactly while it
 * is there. Positions in the list are counted from the queue's start (`#base` + index), so
 * "written up to position p" stays meaningful across flushes.
 *
 * The list is also where the hub's own fan-out backlog lives (see {@link FanOutBacklog}): an
 * update accepted while subscribers wait in the list is out once the flush has passed the last
 * of them, i.e. the list's end when it was accepted. A subscriber whose own socket is backed up
 * is not in the list (it is flushed on `drain`), so one slow reader never counts here.
 */
import { concatFrames, type Frame } from "./frame.ts";

/** What the flush needs of a subscriber. */
export interface Flushable {
  scheduled: boolean;
  flush(): void;
}

/**
 * The hub's fan-out backlog now: updates accepted and offered to subscribers whose sockets can
 * take them, not yet written to all of them. Zero when the flush has caught up; it grows while
 * the hub accepts updates faster than its flushes write them.
 */
export interface FanOutBacklog {
  /** Milliseconds since the oldest of these updates was accepted; 0 when there is none. */
  readonly ageMs: number;
  /** How many updates. */
  readonly updates: number;
  /** Their encoded bytes, each update counted once (not once per subscriber). */
  readonly bytes: number;
}

// How long a flush writes before it lets the event loop run, ms.
const SLICE_MS = 10;
// The same while publishes wait for the backplane's answer: their answers (and their updates,
// which ride along) are not held up by the rest of the flush.
const SHORT_SLICE_MS = 1;

// Subscribers written between two looks at the clock within a slice.
const CLOCK_EVERY = 64;

/** An update in the backlog: where it ends in the list, when it was accepted, its bytes. */
interface Mark {
  readonly end: number;
  readonly at: number;
  readonly bytes: number;
}

/** The updates in the backlog, oldest first. */
class Marks {
  #marks: Mark[] = [];
  #head = 0;
  #bytes = 0;

  get size(): number {
    return this.#marks.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get oldest(): Mark | undefined {
    return this.#marks[this.#head];
  }

  get newest(): Mark | undefined {
    return this.size === 0 ? undefined : this.#marks[this.#marks.length - 1];
  }

  push(mark: Mark): void {
    this.#marks.push(mark);
    this.#bytes += mark.bytes;
  }

  /** Forgets the updates written once the flush has passed `position`. */
  settle(position: number): void {
    const marks = this.#marks;
    while (this.#head < marks.length && (marks[this.#head] as Mark).end <= position) {
      this.#bytes -= (marks[this.#head] as Mark).bytes;
      this.#head++;
    }
    if (this.#head === marks.length) {
      this.#marks = [];
      this.#head = 0;
      this.#bytes = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= marks.length) {
      this.#marks = marks.slice(this.#head);
      this.#head = 0;
    }
  }
}

export class FlushQueue {
  readonly #windowMs: number;
  #pending: Flushable[] = [];
  // Position of `#pending[0]`, and index of the next subscriber to write.
  #base = 0;
  #cursor = 0;
  // Index in `#pending` where the flush under way stops; the rest waits for the next flush.
  #stop = 0;
  // A flush (or the next slice of one) is scheduled.
  #flushScheduled = false;
  #flushing = false;
  #joined: readonly Frame[] | undefined;
  #joinedBytes: Buffer | undefined;
  readonly #marks = new Marks();
  // Publishes held until the flush has passed a position (see `flushed`), in position order.
  #waiting: { readonly position: number; readonly resolve: () => void }[] = [];
  // When the last flush ended (performance.now()), for the window.
  #lastEnded = Number.NEGATIVE_INFINITY;

  readonly #awaiting: () => boolean;

  /**
   * `windowMs`: the least time between the end of a flush and the start of the next; 0: none.
   * `awaiting`: true while publishes wait for the backplane's answer (slices are then short).
   */
  constructor(windowMs = 0, awaiting: () => boolean = () => false) {
    this.#windowMs = windowMs;
    this.#awaiting = awaiting;
  }

  /** Flushes `subscriber` once, soon (see the module comment for when). */
  schedule(subscriber: Flushable): void {
    subscriber.scheduled = true;
    this.#pending.push(subscriber);
    if (this.#flushScheduled || this.#flushing) return;
    this.#startSoon();
  }

  /**
   * Counts an update that has just been offered to every subscriber it goes to, once per update
   * (not per subscriber). It is part of the backlog when subscribers wait in the list; otherwise
   * every subscriber it went to is backed up on its own socket (or there was none).
   */
  accepted(bytes: number): void {
    if (this.#cursor === this.#pending.length) return;
    this.#marks.push({ end: this.#base + this.#pending.length, at: performance.now(), bytes });
  }

  /** The fan-out backlog now (see {@link FanOutBacklog}). */
  get backlog(): FanOutBacklog {
    const marks = this.#marks;
    const oldest = marks.oldest;
    if (oldest === undefined) return { ageMs: 0, updates: 0, bytes: 0 };
    return { ageMs: performance.now() - oldest.at, updates: marks.size, bytes: marks.bytes };
  }

  /**
   * Resolves once every update accepted so far has been written to the subscribers it was
   * offered to (at once when there is none left to write).
   */
  flushed(): Promise<void> {
    const newest = this.#marks.newest;
    if (newest === undefined) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push({ position: newest.end, resolve }));
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

  #startSoon(): void {
    this.#flushScheduled = true;
    const wait = this.#lastEnded + this.#windowMs - performance.now();
    if (wait >= 1) setTimeout(this.#start, Math.ceil(wait));
    else setImmediate(this.#start);
  }

  readonly #start = (): void => {
    this.#flushing = true;
    this.#stop = this.#pending.length;
    this.#slice();
  };

  // One slice of the flush under way: writes until the flush's stop or SLICE_MS (SHORT_SLICE_MS
  // while a publish awaits the backplane), whichever first; the clock is read every CLOCK_EVERY.
  readonly #slice = (): void => {
    this.#flushScheduled = false;
    const pending = this.#pending;
    const stop = this.#stop;
    const started = performance.now();
    let i = this.#cursor;
    while (i < stop) {
      const subscriber = pending[i] as Flushable;
      i++;
      subscriber.scheduled = false;
      subscriber.flush();
      if (i % CLOCK_EVERY === 0) {
        const elapsed = performance.now() - started;
        if (elapsed >= SLICE_MS || (elapsed >= SHORT_SLICE_MS && this.#awaiting())) break;
      }
    }
    this.#cursor = i;
    this.#settle();
    if (i < stop) {
      this.#flushScheduled = true;
      setImmediate(this.#slice);
      return;
    }
    this.#flushing = false;
    this.#joined = undefined;
    this.#joinedBytes = undefined;
    if (this.#windowMs > 0) this.#lastEnded = performance.now();
    if (this.#cursor < this.#pending.length) this.#startSoon();
  };

  // Drops what has been written from the list, forgets written updates, resolves held publishes.
  #settle(): void {
    const position = this.#base + this.#cursor;
    if (this.#cursor === this.#pending.length) {
      this.#pending = [];
      this.#base = position;
      this.#stop = 0;
      this.#cursor = 0;
    } else if (this.#cursor >= 4096 && this.#cursor * 2 >= this.#pending.length) {
      this.#pending = this.#pending.slice(this.#cursor);
      this.#base = position;
      this.#stop -= this.#cursor;
      this.#cursor = 0;
    }
    this.#marks.settle(position);
    const waiting = this.#waiting;
    let n = 0;
    while (n < waiting.length && (waiting[n] as { position: number }).position <= position) n++;
    if (n === 0) return;
    this.#waiting = waiting.slice(n);
    for (let k = 0; k < n; k++) (waiting[k] as { resolve: () => void }).resolve();
  }
}
