/**
 * A resumed subscriber's replay on its way out: the replayed updates go ahead of every live
 * frame, written in chunks, and a paged replay (`Replay.more`) reads its next page only once the
 * last one is written.
 *
 *   open(replay, more) ──▶ [ page: u u u u … ] ──writeChunk(): ≤ 64 KiB a write──▶ sink
 *                            ▲                                   (paused while backed up)
 *                            └── readNext(free bytes): one read at a time; an empty page ends it
 *
 * Invariant: at most one page is held and at most one read is under way; the unwritten bytes of
 * a paged replay's page (`pageBytes`) count against the subscriber's `maxBytes`, and a page is
 * asked for no more than the bytes its queue has free. A page that cannot be read ends the
 * stream: the client resumes again from the last id it got, and nothing is skipped.
 */
import { concatFrames, type Frame } from "./frame.ts";
import { type Joiner, type Sink, writeBatch } from "./sink.ts";
import type { Update } from "./update.ts";

/** The replay's next page, of at most `maxBytes` when given; empty when there is none. */
export type Pages = (maxBytes?: number) => Promise<readonly Update[]>;

/** What reading a page needs of its subscriber. */
export interface PageReader {
  readonly closed: boolean;
  /** True when the subscription selects the update and may see it. */
  wants(update: Update): boolean;
  flush(): void;
  close(reason: "closed"): void;
}

const CHUNK_BYTES = 64 * 1024;
// A replay page belongs to one subscriber: its chunks are copied, not shared like a fan-out's.
const CONCAT: Joiner = { join: concatFrames };

export class ReplayBacklog {
  #frames: readonly Frame[];
  #at = 0;
  #more: Pages | undefined;
  #reading = false;
  #pageBytes: number;

  /** `replay` is already filtered for the subscriber; `more` pages are filtered as they come. */
  constructor(replay: readonly Update[], more: Pages | undefined) {
    this.#frames = replay;
    this.#more = more;
    this.#pageBytes = more === undefined ? 0 : sumBytes(replay);
  }

  /** Bytes of a paged replay's current page not written yet (0 for a replay in one piece). */
  get pageBytes(): number {
    return this.#pageBytes;
  }

  /** True while frames of the current page wait to be written. */
  get writing(): boolean {
    return this.#at < this.#frames.length;
  }

  /** True once every frame is written and no page is left to read: the live queue may follow. */
  get done(): boolean {
    return this.#at >= this.#frames.length && this.#more === undefined;
  }

  /** Writes the next chunk (one frame at least, else up to 64 KiB); false when the sink backs up. */
  writeChunk(sink: Sink, written: { events: number; bytes: number }): boolean {
    const frames = this.#frames;
    const start = this.#at;
    let end = start;
    let bytes = 0;
    while (end < frames.length && (end === start || bytes < CHUNK_BYTES)) {
      bytes += (frames[end] as Frame).bytes.length;
      end++;
    }
    this.#at = end;
    if (this.#more !== undefined) this.#pageBytes -= bytes;
    if (end === frames.length) {
      this.#frames = [];
      this.#at = 0;
    }
    const chunk = frames.slice(start, end);
    written.events += chunk.length;
    written.bytes += bytes;
    return writeBatch(sink, chunk, bytes, CONCAT);
  }

  /**
   * Asks for the next page (once at a time), of at most `free` bytes, and flushes `reader` when
   * it comes; an empty one ends the replay. A read that fails closes `reader`.
   */
  readNext(free: number, reader: PageReader): void {
    const more = this.#more;
    if (this.#reading || more === undefined) return;
    this.#reading = true;
    more(free)
      .then((page) => {
        this.#reading = false;
        if (reader.closed) return;
        if (page.length === 0) this.#more = undefined;
        else {
          this.#frames = page.filter((update) => reader.wants(update));
          this.#at = 0;
          this.#pageBytes = sumBytes(this.#frames);
        }
        reader.flush();
      })
      // A read that fails, or a throw while taking the page in (a subscriber's matching, its
      // sink), ends this stream, never escapes as an unhandled rejection that ends the process.
      .catch(() => {
        this.#reading = false;
        reader.close("closed");
      });
  }
}

function sumBytes(frames: readonly Frame[]): number {
  let bytes = 0;
  for (const frame of frames) bytes += frame.bytes.length;
  return bytes;
}
