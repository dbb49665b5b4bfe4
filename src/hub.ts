/**
 * The hub: takes updates from publishers, stores them through its backplane, and fans each one
 * out to every matching subscriber. It owns the topic index, the per-turn flush and the one
 * keep-alive timer; transports (node:http today) plug in through a {@link Sink}.
 */
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { subscribeNode } from "./adapters/node.ts";
import type { Backplane } from "./backplane/backplane.ts";
import { LocalBackplane } from "./backplane/local.ts";
import { encodeComment, encodeRetry } from "./encoder.ts";
import { CrierError } from "./errors.ts";
import type { MemoryHistoryOptions } from "./history/memory.ts";
import {
  type ActiveSubscription,
  describeSubscriptions,
  subscriptionEventData,
} from "./mercure/subscriptions.ts";
import {
  type Access,
  type CloseReason,
  concatFrames,
  type Frame,
  type QueueOptions,
  type Sink,
  Subscriber,
  type SubscriberHost,
} from "./subscriber.ts";
import { TopicIndex } from "./topic-index.ts";
import { type Update, type UpdateInput, validateUpdate } from "./update.ts";

/** Options of {@link createHub}. Every field is optional. */
export interface HubOptions {
  /** Bounds of the in-memory history (ignored when `backplane` is given). */
  readonly history?: MemoryHistoryOptions | undefined;
  /** Where updates are stored and shared. Default: an in-memory history in this process. */
  readonly backplane?: Backplane | undefined;
  /** Milliseconds between keep-alive comments. Default 15,000; `0` turns them off. */
  readonly keepAliveMs?: number | undefined;
  /** Bounds of each subscriber's queue and what happens at them. */
  readonly queue?: QueueOptions | undefined;
  /** The `retry` hint, in ms, sent to subscribers when the hub closes. Default 1,000. */
  readonly closeRetryMs?: number | undefined;
  /**
   * Mercure active subscriptions: publish a private subscription event on
   * `/.well-known/mercure/subscriptions/…` whenever a subscription starts or ends, and keep the
   * list the subscriptions web API serves. Each event takes a place in the history like any
   * update. Default false.
   */
  readonly subscriptions?: boolean | undefined;
}

/** Options of one subscription. */
export interface SubscribeOptions extends Access {
  /**
   * node:http only: once the response head is written, take the socket away from node:http so
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
  /**
   * User data shown as `payload` in this subscriber's subscription events and API documents
   * (Mercure: the token's `mercure.payload`). Must be JSON-serializable. Default: none.
   */
  readonly payload?: unknown;
}

/** A live subscription, as its owner sees it. */
export interface Subscription {
  /** Unique id of this connection, a `urn:uuid:` URN; the `{subscriber}` of its subscriptions. */
  readonly id: string;
  readonly topics: readonly string[];
  readonly closed: boolean;
  /** Frames and bytes waiting to be written; bounded by the queue options. */
  readonly queued: { readonly events: number; readonly bytes: number };
  /** Ends the stream gracefully. */
  close(): void;
}

/** Facts the hub reports. Listeners run synchronously: keep them cheap. */
export interface HubEvents {
  connect: [subscription: Subscription];
  disconnect: [subscription: Subscription, reason: CloseReason];
  publish: [update: Update];
  drop: [subscription: Subscription];
  error: [error: Error];
}

/** Counters since the hub started. */
export interface HubStats {
  readonly subscribers: number;
  readonly published: number;
  readonly evicted: number;
  readonly dropped: number;
}

const KEEP_ALIVE = { bytes: encodeComment() };
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/event-stream",
  "Cache-Control": "private, no-cache, no-store, must-revalidate, max-age=0",
  "X-Accel-Buffering": "no",
};

export class Hub extends EventEmitter<HubEvents> implements SubscriberHost {
  readonly keepAliveMs: number;
  /** Whether subscription events are published and the subscriptions API has data to serve. */
  readonly subscriptionsEnabled: boolean;
  readonly #backplane: Backplane;
  readonly #index = new TopicIndex();
  readonly #subscribers = new Set<Subscriber>();
  readonly #queue: QueueOptions;
  readonly #closeRetryMs: number;
  readonly #ready: Promise<void>;
  readonly #keepAlive: NodeJS.Timeout | undefined;
  // Active subscriptions by subscriber, in connection order (only with `subscriptions`).
  readonly #active = new Map<Subscriber, readonly ActiveSubscription[]>();
  // Subscription events on their way to the backplane; awaited by close().
  readonly #announcing = new Set<Promise<void>>();
  #pending: Subscriber[] = [];
  #flushScheduled = false;
  #closed = false;
  #published = 0;
  #evicted = 0;
  #dropped = 0;

  constructor(options: HubOptions = {}) {
    super();
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
    if (!Number.isSafeInteger(this.keepAliveMs) || this.keepAliveMs < 0) {
      throw new CrierError("CRIER_ERR_INVALID_OPTION", "keepAliveMs must be an integer ≥ 0");
    }
    this.#queue = options.queue ?? {};
    this.#closeRetryMs = options.closeRetryMs ?? 1000;
    this.subscriptionsEnabled = options.subscriptions ?? false;
    this.#backplane = options.backplane ?? new LocalBackplane(options.history);
    this.#ready = Promise.resolve(this.#backplane.start((update) => this.#deliver(update)));
    this.#ready.catch((err: unknown) => this.#report(err));
    if (this.keepAliveMs > 0) {
      this.#keepAlive = setInterval(() => this.#sendKeepAlive(), this.keepAliveMs);
      this.#keepAlive.unref();
    }
  }

  /** Resolves once the backplane is delivering (at once for the in-memory one). */
  ready(): Promise<void> {
    return this.#ready;
  }

  get stats(): HubStats {
    return {
      subscribers: this.#subscribers.size,
      published: this.#published,
      evicted: this.#evicted,
      dropped: this.#dropped,
    };
  }

  /** The id of the newest stored update (`undefined`: none yet). */
  async lastEventId(): Promise<string | undefined> {
    return this.#backplane.lastEventId();
  }

  /**
   * The subscriptions of the subscribers connected to this hub (not to other nodes sharing its
   * backplane), oldest first. Empty unless the `subscriptions` option is on.
   */
  listSubscriptions(): ActiveSubscription[] {
    return [...this.#active.values()].flat();
  }

  /**
   * Stores the update and delivers it to every matching subscriber. Resolves with the stored
   * update (its `id` is the event id) once the backplane holds it; rejects with a `CrierError`
   * for invalid input (`CRIER_ERR_INVALID_EVENT`, `CRIER_ERR_BAD_REQUEST`), a duplicate id, an
   * unavailable backplane or a closed hub.
   */
  async publish(input: UpdateInput): Promise<Update> {
    if (this.#closed) throw new CrierError("CRIER_ERR_HUB_CLOSED", "the hub is closed");
    return this.#backplane.publish(validateUpdate(input));
  }

  /**
   * Streams matching updates to a `node:http` (or Express) response until either side closes.
   * Resumes after the request's `Last-Event-ID` header (or `options.lastEventId`).
   */
  subscribe(req: IncomingMessage, res: ServerResponse, options: SubscribeOptions): Subscription {
    return subscribeNode(this, req, res, options);
  }

  /**
   * Attaches a subscriber writing to any {@link Sink}; the transport-independent form of
   * {@link subscribe}. The subscriber is registered before anything is read from the history,
   * so no update can fall between the replay and the live stream.
   */
  connect(sink: Sink, options: SubscribeOptions): Subscriber {
    if (this.#closed) throw new CrierError("CRIER_ERR_HUB_CLOSED", "the hub is closed");
    const subscriber = new Subscriber(sink, this, options, this.#queue);
    this.#subscribers.add(subscriber);
    this.#index.add(subscriber);
    if (this.subscriptionsEnabled) {
      const active = describeSubscriptions(subscriber.id, options.topics, options.payload);
      this.#active.set(subscriber, active);
      // [spec] it MUST publish an update when a subscription is created or terminated.
      this.#announce(active, true);
    }
    this.emit("connect", subscriber);
    const headers = { ...SSE_HEADERS, ...options.headers };
    const lastEventId = options.lastEventId;
    const fail = (err: unknown) => this.#fail(subscriber, err);
    if (lastEventId === undefined) {
      // [spec] The hub MUST NOT disclose, via this header, the identifier of any event the
      // subscriber is not authorized to receive. So: the newest id it may see, else none.
      const newest = this.#newest;
      const last =
        newest === undefined || subscriber.isDenied(newest) ? this.#newestPublic : newest.id;
      settle(
        last,
        () => {
          const open = last === undefined ? headers : { ...headers, ...lastEventIdHeaders(last) };
          subscriber.open(open, []);
        },
        fail,
      );
      return subscriber;
    }
    settle(
      this.#backplane.replay(lastEventId),
      (replay) => {
        const resumed = replay === undefined ? "earliest" : lastEventId;
        // Replayed updates are filtered against the current token, like live ones.
        const updates = replay?.filter((update) => subscriber.wants(update)) ?? [];
        subscriber.open({ ...headers, ...lastEventIdHeaders(resumed) }, updates);
      },
      fail,
    );
    return subscriber;
  }

  /**
   * Stops the hub: no more publishes or subscriptions; every subscriber gets a `retry` hint and
   * its stream is ended; the backplane is closed. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepAlive);
    const retry = encodeRetry(this.#closeRetryMs);
    for (const subscriber of [...this.#subscribers]) subscriber.close("shutdown", retry);
    // The subscriptions just ended are announced before the backplane goes.
    await Promise.all(this.#announcing);
    await this.#backplane.close();
  }

  /** @internal SubscriberHost: flush this subscriber later in this turn. */
  schedule(subscriber: Subscriber): void {
    subscriber.scheduled = true;
    this.#pending.push(subscriber);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flush);
  }

  /** @internal SubscriberHost */
  dropped(subscriber: Subscriber): void {
    this.#dropped++;
    this.emit("drop", subscriber);
  }

  /** @internal SubscriberHost */
  closed(subscriber: Subscriber, reason: CloseReason): void {
    this.#subscribers.delete(subscriber);
    this.#index.delete(subscriber);
    const active = this.#active.get(subscriber);
    if (active !== undefined) {
      this.#active.delete(subscriber);
      this.#announce(active, false);
    }
    if (reason === "overflow" || reason === "stalled") this.#evicted++;
    this.emit("disconnect", subscriber, reason);
  }

  // One write per subscriber per event-loop turn, however many updates arrived in it.
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

  /**
   * @internal SubscriberHost. In a fan-out, consecutive subscribers of a flush usually hold the
   * very same frames (the updates of this turn on their topic): the last join is remembered for
   * the rest of the flush, and reused when the frames are the same objects in the same order.
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
  #joined: readonly Frame[] | undefined;
  #joinedBytes: Buffer | undefined;

  readonly #offer = (subscriber: Subscriber): void => {
    if (!subscriber.isDenied(this.#current as Update)) subscriber.offer(this.#current as Update);
  };
  #current: Update | undefined;
  // The newest update delivered, and the newest public one: what a fresh subscriber is told.
  #newest: Update | undefined;
  #newestPublic: string | undefined;

  #deliver(update: Update): void {
    this.#published++;
    this.#newest = update;
    if (!update.private) this.#newestPublic = update.id;
    this.#current = update;
    this.#index.forEachMatch(update.topics, this.#offer);
    this.#current = undefined;
    this.emit("publish", update);
  }

  // [spec] In order to only allow authorized subscribers to receive subscription events, the
  // subscription update MUST be marked as `private`.
  #announce(subscriptions: readonly ActiveSubscription[], active: boolean): void {
    for (const subscription of subscriptions) {
      const fields = {
        topics: [subscription.id],
        data: subscriptionEventData(subscription, active),
        private: true,
      };
      const done = this.#backplane.publish(fields).then(
        () => undefined,
        (err: unknown) => this.#report(err),
      );
      this.#announcing.add(done);
      void done.then(() => this.#announcing.delete(done));
    }
  }

  #sendKeepAlive(): void {
    for (const subscriber of this.#subscribers) subscriber.tick(KEEP_ALIVE);
  }

  // The history could not be read (the backplane is unavailable). The connection is dropped
  // rather than answered with an error status: a browser's EventSource gives up for good on a
  // non-200 answer, but retries after a network error, which is what the client needs here.
  #fail(subscriber: Subscriber, err: unknown): void {
    subscriber.close("closed");
    this.#report(err);
  }

  // Runtime failures are reported, never thrown into the caller's event loop.
  #report(err: unknown): void {
    if (this.listenerCount("error") === 0) return;
    this.emit("error", err instanceof Error ? err : new Error(String(err)));
  }
}

/** Creates a hub. See {@link HubOptions} for the defaults. */
export function createHub(options: HubOptions = {}): Hub {
  return new Hub(options);
}

// `Last-Event-ID` for v0.x clients and `Mercure-Last-Event-ID` for draft-08 ones: one value.
// Header values are bytes: the id goes out as UTF-8, which is how EventSource reads it back.
function lastEventIdHeaders(id: string): Record<string, string> {
  const value = Buffer.from(id, "utf8").toString("latin1");
  return { "Last-Event-ID": value, "Mercure-Last-Event-ID": value };
}

// Runs `then` synchronously when `value` is not a promise, so the in-memory backplane replays
// in the same tick as the registration.
// A throw in `then` goes to `fail` too, so no path leaves a registered subscriber half-open.
function settle<T>(value: T | Promise<T>, then: (value: T) => void, fail: (err: unknown) => void) {
  if (value instanceof Promise) {
    value.then(then).catch(fail);
    return;
  }
  try {
    then(value);
  } catch (err) {
    fail(err);
  }
}
