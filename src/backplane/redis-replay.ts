/**
 * Replays from the Redis stream, in pages, for the Redis backplane: the part of a resume that
 * reads the history. Reads run on a connection of their own (publishes never wait behind them),
 * at most `concurrency` at a time (the rest wait their turn, they do not fail), and each page is
 * decoded once and shared by every replay that reads it.
 *
 *   resume ─▶ locate(id) ─▶ cursor ─▶ page(cursor) ─▶ page(last of it) ─▶ … ─▶ up to `upTo`
 *                 └──── slots: ≤ concurrency reads on the replay connection ────┘
 *                                  pages: LRU of decoded pages, by (epoch, after)
 *
 * Invariant: a replay hands out the entries of its epoch in (cursor, upTo], each once, in
 * stream order, with no gap: a page is read only from a position still in the stream (the
 * `PAGE` script refuses one that was trimmed away), and a cached page stays true because a
 * stream only grows at its end and is trimmed at its start.
 */
import {
  decodeEntry,
  type Entry,
  isBefore,
  type Position,
  type RedisHistory,
} from "../history/redis.ts";
import { LruCache } from "../lru.ts";
import type { Update } from "../update.ts";

/** How replays read the stream. */
export interface ReplayReaderOptions {
  /** Replay reads in flight at once; more wait for a free slot. */
  readonly concurrency: number;
  /** Most entries in one page. */
  readonly pageSize: number;
  /** A page is cut after the entry that brings it to this many bytes (at least one entry). */
  readonly pageBytes: number;
  /** Decoded pages kept for other replays of the same range. */
  readonly cachedPages: number;
}

/** One stream entry of a page: its position (also as numbers), and the update unless malformed. */
interface PageItem {
  readonly position: Position;
  readonly ms: number;
  readonly seq: number;
  readonly entry: Entry | undefined;
}

export class ReplayReader {
  readonly #history: RedisHistory;
  readonly #options: ReplayReaderOptions;
  readonly #slots: Slots;
  // Promises, so that replays asking for a page being read wait for that read, not a new one.
  readonly #pages: LruCache<string, Promise<readonly PageItem[]>>;

  constructor(history: RedisHistory, options: ReplayReaderOptions) {
    this.#history = history;
    this.#options = options;
    this.#slots = new Slots(options.concurrency);
    this.#pages = new LruCache(options.cachedPages);
  }

  /** Reads waiting for a slot now. */
  get waiting(): number {
    return this.#slots.waiting;
  }

  /** Runs a read of the history when a slot is free. */
  read<T>(read: () => Promise<T>): Promise<T> {
    return this.#slots.run(read);
  }

  /**
   * The pages of a replay of `epoch` after `cursor` up to `upTo`: each call gives the next
   * updates, at most `maxBytes` of them encoded (at least one), and none once the replay is
   * complete. The replay holds one shared page at a time. Rejects when the stream was trimmed
   * past the replay or replaced (the subscriber must resume again and be told `earliest`) or
   * Redis is unavailable.
   */
  pages(
    epoch: string,
    cursor: Position,
    upTo: Position,
  ): (maxBytes?: number) => Promise<readonly Update[]> {
    let after = cursor;
    let done = !isBefore(cursor, upTo);
    // Compared with every entry handed out: parsed once here, as each page's positions are.
    const [upToMs, upToSeq] = parsePosition(upTo);
    // The page being handed out, and the index of its next item.
    let held: readonly PageItem[] = [];
    let at = 0;
    return async (maxBytes = Number.POSITIVE_INFINITY) => {
      const updates: Update[] = [];
      let bytes = 0;
      while (!done) {
        if (at >= held.length) {
          if (updates.length > 0) return updates; // what we have, before another read
          held = await this.#page(epoch, after, false);
          // A page cached when the stream ended there: read what came after it since.
          if (held.length === 0) held = await this.#page(epoch, after, true);
          at = 0;
          if (held.length === 0) break;
        }
        const { position, ms, seq, entry } = held[at] as PageItem;
        if (ms > upToMs || (ms === upToMs && seq > upToSeq)) break;
        // Entries of a dead epoch left in the stream were never resumable; malformed ones
        // were never delivered.
        if (entry !== undefined && entry.epoch === epoch) {
          const size = entry.update.bytes.length;
          if (updates.length > 0 && bytes + size > maxBytes) return updates;
          updates.push(entry.update);
          bytes += size;
        }
        at++;
        after = position;
        if (after === upTo) break;
      }
      done = true;
      held = [];
      return updates;
    };
  }

  async #page(epoch: string, after: Position, fresh: boolean): Promise<readonly PageItem[]> {
    const key = `${epoch} ${after}`;
    const cached = fresh ? undefined : this.#pages.get(key);
    if (cached !== undefined) return cached;
    const { pageSize, pageBytes } = this.#options;
    const read = this.read(() => this.#history.page(after, epoch, pageSize, pageBytes)).then(
      (raw) => {
        if (raw === undefined) {
          throw new Error(
            "the history was trimmed past this replay, or replaced, while it was read; the client resumes again",
          );
        }
        return raw.map((item): PageItem => {
          const [ms, seq] = parsePosition(item[0]);
          return { position: item[0], ms, seq, entry: decodeEntry(item) };
        });
      },
    );
    this.#pages.set(key, read);
    // A failed read is not kept: the next replay tries again.
    read.catch(() => {
      if (this.#pages.get(key) === read) this.#pages.delete(key);
    });
    return read;
  }
}

function parsePosition(position: Position): [ms: number, seq: number] {
  const dash = position.indexOf("-");
  return [Number(position.slice(0, dash)), Number(position.slice(dash + 1))];
}

// A counting semaphore: at most `free` callers run at once, the others wait in arrival order.
class Slots {
  #free: number;
  readonly #queue: (() => void)[] = [];
  #head = 0;

  constructor(size: number) {
    this.#free = size;
  }

  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#queue.push(resolve));
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #release(): void {
    const next = this.#queue[this.#head];
    if (next === undefined) {
      this.#free++;
      return;
    }
    // An index instead of shift(): thousands of waiters during a resume storm.
    this.#head++;
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    }
    next();
  }
}
