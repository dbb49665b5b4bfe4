/**
 * In-process consumers: `for await (const update of hub.updates({ topics }))`, with the same
 * registration, resume and bounded queue as a network subscriber.
 *
 *   hub ──offer()──▶ subscriber queue (≤ maxEvents, ≤ maxBytes) ──writeFrames()──▶ [ buffer ] ──next()──▶ consumer
 *                                                              refused while the buffer holds ≥ highWaterMark
 *
 * Invariant: the buffer takes frames only while it holds fewer than `highWaterMark` updates, so
 * it never holds more than that plus one batch of the subscriber's bounded queue. A consumer
 * that stops calling `next()` backs the subscriber up like a socket that stops reading, and is
 * ended with `CRIER_ERR_OVERFLOW`: never unbounded memory.
 */
import { CrierError } from "./errors.ts";
import type { Frame } from "./frame.ts";
import { integerOption } from "./options.ts";
import type { CloseReason, Connection, FrameSink, SubscribeOptions } from "./subscriber.ts";

/** What `updatesOf` needs of the hub (a structural type, so this module does not import it). */
interface Connectable {
  connect(sink: FrameSink, options: SubscribeOptions): Connection;
}

import type { Update } from "./update.ts";

/** Options of `hub.updates()`. */
export interface UpdatesOptions extends Omit<SubscribeOptions, "detach" | "headers"> {
  /** Ends the iteration (quietly: the loop just stops) when it aborts. */
  readonly signal?: AbortSignal | undefined;
  /** Updates handed over but not yet taken before the subscriber counts as backed up. Default 64. */
  readonly highWaterMark?: number | undefined;
}

/** An in-process subscription: iterate it; `close()` (or `break`) ends it. */
export interface Updates extends AsyncIterableIterator<Update> {
  /**
   * Resolves once the subscription is open: `true` when `lastEventId` was given and the history
   * no longer holds it, so updates were missed (the iteration then yields live updates only,
   * never a partial replay), else `false`.
   */
  readonly earliest: Promise<boolean>;
  /** Ends the subscription; a pending `next()` resolves done. Idempotent. */
  close(): void;
}

const HIGH_WATER_MARK = 64;

class UpdateStream implements Updates, FrameSink {
  readonly kind = "in-process";
  readonly earliest: Promise<boolean>;
  connection: Connection | undefined;
  #buffer: Update[] = [];
  #backedUp = false;
  #ended = false;
  #leaving = false;
  #started = false;
  #failure: CrierError | undefined;
  #lastId: string | undefined;
  // Every `next()` waiting for an update (a caller may ask again before the last one settled).
  readonly #waiting: (() => void)[] = [];
  #opened!: (earliest: boolean) => void;
  readonly #highWaterMark: number;

  readonly #signal: AbortSignal | undefined;
  readonly #abort = () => this.close();

  constructor(
    highWaterMark: number,
    lastEventId: string | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.#highWaterMark = highWaterMark;
    this.#lastId = lastEventId;
    this.#signal = signal;
    signal?.addEventListener("abort", this.#abort, { once: true });
    this.earliest = new Promise((resolve) => {
      this.#opened = resolve;
    });
  }

  start(headers: Readonly<Record<string, string>>): void {
    this.#started = true;
    this.#opened(headers["Last-Event-ID"] === "earliest");
  }

  // Comments and retry hints are for network clients.
  write(): boolean {
    return true;
  }

  writeFrames(frames: readonly Frame[]): boolean {
    for (const frame of frames) if ("topics" in frame) this.#buffer.push(frame as Update);
    this.#wake();
    this.#backedUp = this.#buffer.length >= this.#highWaterMark;
    return !this.#backedUp;
  }

  end(): void {
    this.#finish();
  }

  destroy(reason?: CloseReason): void {
    // Backed up when the hub closed (or its lifetime ended): what it holds is still handed out,
    // then the loop ends, as it does for a consumer that kept up. Only falling behind fails it.
    if (reason === "shutdown" || reason === "expired") {
      this.#finish();
      return;
    }
    if (!this.#leaving) {
      this.#buffer = [];
      const resume =
        this.#lastId === undefined
          ? "from the start"
          : `with lastEventId ${JSON.stringify(this.#lastId)}`;
      this.#failure = this.#started
        ? new CrierError(
            "CRIER_ERR_OVERFLOW",
            `the consumer fell behind and its subscription was ended; resume ${resume}, or take updates faster (queue.maxEvents, queue.maxBytes)`,
          )
        : new CrierError("CRIER_ERR_UNAVAILABLE", "the history could not be read; try again");
    }
    this.#finish();
  }

  async next(): Promise<IteratorResult<Update>> {
    for (;;) {
      const update = this.#buffer.shift();
      if (update !== undefined) {
        this.#lastId = update.id;
        if (this.#backedUp && this.#buffer.length === 0) {
          this.#backedUp = false;
          this.connection?.drained();
        }
        return { value: update, done: false };
      }
      if (this.#failure !== undefined) {
        const failure = this.#failure;
        this.#failure = undefined;
        throw failure;
      }
      if (this.#ended) return { value: undefined, done: true };
      await new Promise<void>((resolve) => {
        this.#waiting.push(resolve);
      });
    }
  }

  async return(): Promise<IteratorResult<Update>> {
    this.close();
    return { value: undefined, done: true };
  }

  close(): void {
    this.#leaving = true;
    this.#buffer = [];
    this.connection?.gone();
    this.#finish();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #wake(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }

  #finish(): void {
    this.#signal?.removeEventListener("abort", this.#abort);
    if (!this.#started) this.#opened(false);
    this.#ended = true;
    this.#wake();
  }
}

/** `hub.updates()`: see {@link Hub.updates}. */
export function updatesOf(hub: Connectable, options: UpdatesOptions): Updates {
  if (typeof options !== "object" || options === null) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "hub.updates needs an options object with topics",
    );
  }
  const highWaterMark = integerOption("highWaterMark", options.highWaterMark, HIGH_WATER_MARK, 1);
  const { signal, highWaterMark: _, ...subscribe } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", "signal must be an AbortSignal");
  }
  const stream = new UpdateStream(highWaterMark, options.lastEventId, signal);
  try {
    stream.connection = hub.connect(stream, subscribe);
  } catch (err) {
    stream.close(); // so the abort listener added above does not outlive the refusal
    throw err;
  }
  if (signal?.aborted) stream.close();
  return stream;
}
