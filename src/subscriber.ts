/**
 * One subscriber: its topic selectors, what it may receive, and a bounded queue of frames
 * waiting to be written to its connection.
 *
 *   hub ──offer()──▶ [ frame frame frame ]  ──flush(): one write per event-loop turn──▶ sink
 *                      ≤ maxEvents, ≤ maxBytes         (paused while the sink is backed up)
 *
 * Invariant: frames reach the sink in the order they were offered, after the replay backlog,
 * and nothing is written while the sink is backed up (`write()` returned false) until it
 * drains. When the queue would pass a bound the subscriber is disconnected (default) or the
 * frame is dropped; it never grows past its bounds. A paged replay (`Replay.more`) reads its
 * next page only once the last one is written, its unwritten page counts against `maxBytes`,
 * and live frames wait in the queue until the last page is out.
 */
import { randomUUID } from "node:crypto";
import { encodeComment } from "./encoder.ts";
import { CrierError } from "./errors.ts";
import { concatFrames, type Frame } from "./frame.ts";
import { choiceOption, integerOption } from "./options.ts";
import {
  compileClaim,
  compileSelector,
  coversAny,
  type Selector,
  type SelectorInput,
} from "./selectors/selector.ts";
import type { Update } from "./update.ts";

/**
 * Where a subscriber's bytes go: an HTTP/1.1 response today, an HTTP/2 stream or a Fetch
 * `ReadableStream` tomorrow. The adapter calls {@link Connection.drained} on drain and
 * {@link Connection.gone} when the peer goes away.
 */
export interface Sink {
  /** What carries the stream, counted per kind in `hub.stats.sinks` (e.g. `node-socket`). */
  readonly kind?: string | undefined;
  /** Sends the response head. Called once, before the first write. */
  start(headers: Readonly<Record<string, string>>): void;
  /** Writes bytes; returns false when the transport is backed up (then wait for `drained`). */
  write(chunk: Buffer): boolean;
  /** Ends the stream after what was written. */
  end(): void;
  /** Drops the connection at once, discarding anything buffered. */
  destroy(): void;
}

/**
 * A sink that takes the frames themselves rather than their joined bytes: the in-process
 * consumer (`hub.updates()`), which hands out the `Update` objects. Internal.
 */
export interface FrameSink extends Sink {
  /** Takes frames in order; returns false when the consumer is backed up (then wait for `drained`). */
  writeFrames(frames: readonly Frame[]): boolean;
}

function isFrameSink(sink: Sink): sink is FrameSink {
  return typeof (sink as Partial<FrameSink>).writeFrames === "function";
}

/** What happens when a subscriber's queue is full. */
export type OverflowPolicy = "disconnect" | "drop";

/** Defaults of {@link QueueOptions}. */
export const QUEUE_DEFAULTS = { maxEvents: 4096, maxBytes: 1024 * 1024 } as const;

/** Checks queue options and applies their defaults; throws `CRIER_ERR_INVALID_OPTION`. */
export function resolveQueueOptions(queue: QueueOptions = {}): Required<{
  [K in keyof QueueOptions]: Exclude<QueueOptions[K], undefined>;
}> {
  return {
    maxEvents: integerOption("queue.maxEvents", queue.maxEvents, QUEUE_DEFAULTS.maxEvents, 1),
    maxBytes: integerOption("queue.maxBytes", queue.maxBytes, QUEUE_DEFAULTS.maxBytes, 1),
    overflow: choiceOption("queue.overflow", queue.overflow, "disconnect", ["disconnect", "drop"]),
  };
}

/** Bounds of one subscriber's queue. */
export interface QueueOptions {
  /** Most frames waiting to be written. Default 4,096. */
  readonly maxEvents?: number | undefined;
  /** Most bytes waiting to be written (besides what the socket itself buffers). Default 1 MiB. */
  readonly maxBytes?: number | undefined;
  /**
   * At the bound: `disconnect` (default) closes the connection so the client resumes from the
   * history with Last-Event-ID and loses nothing; `drop` discards the new frame (counted) and
   * keeps the connection: use it only where losing updates is acceptable.
   */
  readonly overflow?: OverflowPolicy | undefined;
}

/**
 * Why a subscriber ended. `overflow`: its queue hit a bound; `stalled`: its connection stayed
 * backed up for {@link STALLED_TICKS} keep-alive intervals; `expired`: its token's `exp` passed.
 */
export type CloseReason =
  | "client"
  | "overflow"
  | "stalled"
  | "shutdown"
  | "closed"
  | "expired"
  | "reset";

/** A live subscription, as its owner sees it. */
export interface Subscription {
  /** Unique id of this connection, a `urn:uuid:` URN (made when first asked for). */
  readonly id: string;
  /** The selectors as written. */
  readonly topics: readonly string[];
  readonly closed: boolean;
  /** Frames and bytes waiting to be written; bounded by the queue options. */
  readonly queued: { readonly events: number; readonly bytes: number };
  /** Ends the stream gracefully. */
  close(): void;
}

/** What an adapter holds after `hub.connect(sink)`: the subscription and the transport's two calls. */
export interface Connection extends Subscription {
  /** The sink can take more bytes (`drain`). */
  drained(): void;
  /**
   * The peer went away: `client` when it closed, `stalled` when the transport gave up on it
   * (nothing acknowledged for its timeout: a vanished peer or one that stopped reading).
   */
  gone(reason?: "client" | "stalled"): void;
}

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
  /**
   * Hub-wide write counters, added to once per write (a flush or a backlog chunk), never per
   * frame: `events` counts updates written (keep-alives and comments excluded), `bytes` every
   * byte handed to a sink.
   */
  readonly written: { events: number; bytes: number };
}

const BACKLOG_CHUNK_BYTES = 64 * 1024;
/** Keep-alive intervals a connection may stay backed up before it is dropped (45–60 s by default). */
export const STALLED_TICKS = 4;
const MAX_TIMER_MS = 2 ** 31 - 1;
const OPEN_COMMENT = encodeComment();

/** Options of one subscription. */
export interface SubscribeOptions extends Access {
  /**
   * node:http only (`subscribeNode`): once the response head is written, take the socket away from node:http so
   * the request, the response and the parser are freed (about half the memory of an idle
   * subscriber; see BENCHMARKS.md). The stream is then close-delimited, and the request's and
   * response's own `close` events no longer fire: watch the hub's `disconnect` event instead.
   * Default false; the standalone hub turns it on.
   */
  readonly detach?: boolean | undefined;
  /** Resume after this id; overrides the request's `Last-Event-ID` header. */
  readonly lastEventId?: string | undefined;
  /** Extra response headers (CORS, …). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** What a subscriber asked for and what it may see. */
export interface Access {
  /**
   * Topic selectors of the subscription: plain strings (`*`, a URI template when it contains
   * `{`, else an exact topic), `{ exact }`, `{ template }` or `{ urlpattern, base? }` objects,
   * or selectors compiled by `compileSelector`. Compiled once, when the subscriber is made.
   */
  readonly topics: readonly (SelectorInput | Selector)[];
  /**
   * Token claims for which the subscriber may receive private updates: strings as in
   * `mercure.subscribe` (`*`, URI templates or exact topics), or compiled selectors (an access
   * token's matchers). Default: none.
   */
  readonly authorized?: readonly (string | Selector)[] | undefined;
  /**
   * When the subscription ends, in ms since the epoch (the token's `exp`): the stream is ended
   * gracefully so the client reconnects with a fresh token. Default: never.
   */
  readonly expiresAt?: number | undefined;
  /**
   * When the subscription ends at the latest, in ms since the epoch (a bound on a connection's
   * lifetime): checked at each keep-alive, so it may end up to one keep-alive interval later,
   * and it costs no timer of its own (a timer per idle subscriber is about half a kilobyte).
   * Without keep-alives it is never checked: use `expiresAt` then. Default: never.
   */
  readonly endsAt?: number | undefined;
}

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

  readonly #sink: Sink;
  readonly #host: SubscriberHost;
  #queue: Frame[] = [];
  #queuedBytes = 0;
  #backlog: readonly Frame[] = [];
  #backlogAt = 0;
  // The next page of a paged replay (until it gives an empty one), and the bytes of the current
  // page not written yet, which count against maxBytes.
  #more: ((maxBytes?: number) => Promise<readonly Update[]>) | undefined;
  #paging = false;
  #pageBytes = 0;
  #state: "pending" | "open" | "closed" = "pending";
  #blocked = false;
  // Ids still to arrive live that the client already has (see `Replay.skip`).
  #skip: Set<string> | undefined;
  #stalledTicks = 0;
  // Keep-alive frames in the queue, so a flush can count updates without looking at each frame.
  #keepAlives = 0;
  readonly #claims: readonly Selector[];
  #expiry: NodeJS.Timeout | undefined;
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
    if (access.expiresAt !== undefined) this.#expireAt(access.expiresAt);
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
    return { events: this.#queue.length, bytes: this.#queuedBytes + this.#pageBytes };
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
      this.#queuedBytes + this.#pageBytes + size > this.maxBytes
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
    more?: ((maxBytes?: number) => Promise<readonly Update[]>) | undefined,
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
    this.#backlog = replay;
    if (more !== undefined) {
      this.#more = more;
      this.#pageBytes = sumBytes(replay);
    }
    this.flush();
  }

  /** Writes the backlog and then the queue, one write for the queue, until the sink backs up. */
  flush(): void {
    if (this.#state !== "open") return;
    while (!this.#blocked && this.#backlogAt < this.#backlog.length) this.#writeBacklogChunk();
    if (this.#blocked) return;
    // Live frames wait behind the rest of a paged replay.
    if (this.#more !== undefined) {
      this.#nextPage(this.#more);
      return;
    }
    if (this.#queue.length === 0) return;
    const queue = this.#queue;
    if (isFrameSink(this.#sink)) {
      this.#host.written.events += queue.length - this.#keepAlives;
      this.#host.written.bytes += this.#queuedBytes;
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#keepAlives = 0;
      this.#blocked = !this.#sink.writeFrames(queue);
      return;
    }
    const chunk =
      queue.length === 1 ? (queue[0] as Frame).bytes : this.#host.join(queue, this.#queuedBytes);
    const written = this.#host.written;
    written.events += queue.length - this.#keepAlives;
    written.bytes += chunk.length;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#keepAlives = 0;
    this.#blocked = !this.#sink.write(chunk);
  }

  /** The sink can take more bytes. */
  drained(): void {
    this.#blocked = false;
    this.#stalledTicks = 0;
    this.flush();
  }

  /**
   * Called by the hub once per keep-alive interval: queues the keep-alive, and disconnects a
   * subscriber whose connection has not drained for {@link STALLED_TICKS} intervals in a row.
   * A client that stopped reading on a quiet topic would otherwise hold its connection (and a
   * place under the subscriber cap) until thousands of keep-alives filled its queue.
   */
  tick(keepAlive: Frame): void {
    if (this.#blocked && ++this.#stalledTicks >= STALLED_TICKS) {
      this.close("stalled");
      return;
    }
    if (this.#endsAt !== undefined && Date.now() >= this.#endsAt) {
      this.close("expired");
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
   * Ends the subscription. `shutdown` and `closed` end the stream gracefully after an optional
   * final frame (a retry hint); `overflow` drops the connection at once, so a stalled client
   * holds no more memory. Idempotent.
   */
  close(reason: CloseReason = "closed", last?: Buffer | undefined): void {
    if (this.#state === "closed") return;
    const wasOpen = this.#state === "open";
    this.#state = "closed";
    clearTimeout(this.#expiry);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#keepAlives = 0;
    this.#backlog = [];
    this.#more = undefined;
    this.#pageBytes = 0;
    // A backed-up connection cannot take a graceful ending either: it is dropped, so that a
    // client that stopped reading does not keep its socket open after the subscription ended.
    if (
      reason === "overflow" ||
      reason === "stalled" ||
      reason === "client" ||
      !wasOpen ||
      this.#blocked
    ) {
      this.#sink.destroy();
    } else {
      if (last !== undefined) this.#sink.write(last);
      this.#sink.end();
    }
    this.#host.closed(this, reason);
  }

  // One unref'd timer per subscription whose token expires, none otherwise: nothing is checked
  // per event, and a hub-wide sweep would visit every subscriber on every tick to close a few.
  // Timers cap at 2^31-1 ms (about 24.8 days), so a later expiry re-arms.
  #expireAt(at: number): void {
    const delay = Math.max(0, at - Date.now());
    this.#expiry = setTimeout(
      () => {
        if (delay > MAX_TIMER_MS) this.#expireAt(at);
        else this.close("expired");
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    this.#expiry.unref();
  }

  // True (and forgotten) when the frame is one the resume said to skip; the set empties as its
  // ids arrive, and is dropped then, so only a resumed subscriber ever pays for the check.
  #skipped(frame: Frame): boolean {
    const skip = this.#skip;
    if (skip === undefined || frame.id === undefined || !skip.delete(frame.id)) return false;
    if (skip.size === 0) this.#skip = undefined;
    return true;
  }

  // Asks for the replay's next page (once at a time); an empty one ends the replay, and the
  // queue follows. A page that cannot be read ends the stream: the client resumes again from
  // the last id it got, and nothing is skipped.
  #nextPage(more: (maxBytes?: number) => Promise<readonly Update[]>): void {
    if (this.#paging) return;
    this.#paging = true;
    // Only as many bytes as the queue has free: the page counts against the bound.
    more(Math.max(1, this.maxBytes - this.#queuedBytes)).then(
      (page) => {
        this.#paging = false;
        if (this.#state !== "open") return;
        if (page.length === 0) this.#more = undefined;
        else {
          this.#backlog = page.filter((update) => this.wants(update));
          this.#backlogAt = 0;
          this.#pageBytes = sumBytes(this.#backlog);
        }
        this.flush();
      },
      () => {
        this.#paging = false;
        this.close("closed");
      },
    );
  }

  #writeBacklogChunk(): void {
    const backlog = this.#backlog;
    const start = this.#backlogAt;
    let end = start;
    let bytes = 0;
    while (end < backlog.length && (end === start || bytes < BACKLOG_CHUNK_BYTES)) {
      bytes += (backlog[end] as Frame).bytes.length;
      end++;
    }
    this.#backlogAt = end;
    if (this.#more !== undefined) this.#pageBytes -= bytes;
    if (end === backlog.length) {
      this.#backlog = [];
      this.#backlogAt = 0;
    }
    const frames = backlog.slice(start, end);
    this.#host.written.events += frames.length;
    this.#host.written.bytes += bytes;
    if (isFrameSink(this.#sink)) {
      this.#blocked = !this.#sink.writeFrames(frames);
      return;
    }
    this.#blocked = !this.#sink.write(
      frames.length === 1 ? (frames[0] as Frame).bytes : concatFrames(frames, bytes),
    );
  }
}

function sumBytes(frames: readonly Frame[]): number {
  let bytes = 0;
  for (const frame of frames) bytes += frame.bytes.length;
  return bytes;
}

// `hub.connect()` is public: a sink or options from plain JavaScript that cannot work are refused
// with a typed error before anything is registered, never a TypeError from deep inside a flush.
function assertSink(sink: Sink): void {
  const methods = ["start", "write", "end", "destroy"] as const;
  if (
    typeof sink !== "object" ||
    sink === null ||
    methods.some((method) => typeof sink[method] !== "function")
  ) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "a sink must be an object with start, write, end and destroy methods",
    );
  }
}

function assertAccess(access: Access): void {
  if (typeof access !== "object" || access === null || !Array.isArray(access.topics)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "subscription options need topics, an array of selectors",
    );
  }
  if (access.authorized !== undefined && !Array.isArray(access.authorized)) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", "authorized must be an array of selectors");
  }
  if (access.expiresAt !== undefined && !Number.isFinite(access.expiresAt)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "expiresAt must be a time in ms since the epoch",
    );
  }
  if (access.endsAt !== undefined && !Number.isFinite(access.endsAt)) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", "endsAt must be a time in ms since the epoch");
  }
  // The hub hands its whole SubscribeOptions over: a number id would never be found in the
  // history (a silent `earliest`), a string of headers would be spread into nonsense names.
  const { lastEventId, headers } = access as SubscribeOptions;
  if (lastEventId !== undefined && typeof lastEventId !== "string") {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", "lastEventId must be a string, an event id");
  }
  if (headers !== undefined && (typeof headers !== "object" || headers === null)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "headers must be an object of header names and values",
    );
  }
}
