/**
 * The hub: takes updates from publishers, stores them through its backplane, and fans each one
 * out to every matching subscriber. It owns the topic index, the flush (flush-queue.ts) and the one
 * keep-alive timer; transports plug in through a {@link Sink} (see `adapters/`): the hub knows
 * no transport and no protocol.
 *
 *   publish ──▶ backplane (stores, orders) ──#deliver──▶ topic index ──offer()──▶ subscribers
 *   connect ──▶ register (index, counters) ──▶ stream-start.ts: fresh, or resumed from history
 *
 * Invariant: a subscriber is registered before anything is read from the history, each update
 * is offered to each matching subscriber once, and after `close()` starts no subscription is
 * accepted. Its parts, each in its own module: options (`hub-options.ts`), counters
 * (`hub-stats.ts`), how a stream starts (`stream-start.ts`) and how streams end
 * (`hub-close.ts`); their public types are exported from here too.
 */
import { EventEmitter } from "node:events";
import type { Backplane, SharedDirectory } from "./backplane/backplane.ts";
import { LocalBackplane } from "./backplane/local.ts";
import { encodeComment } from "./encoder.ts";
import { CrierError } from "./errors.ts";
import { FlushQueue } from "./flush-queue.ts";
import { type CloseOptions, endAll, endSpread } from "./hub-close.ts";
import { HUB_DEFAULTS, HUB_OPTION_KEYS, type HubOptions } from "./hub-options.ts";
import { HubCounters, type HubStats, queuedIn } from "./hub-stats.ts";
import { durationOption, integerOption, knownKeys } from "./options.ts";
import { Pushback } from "./pushback.ts";
import { StreamStart } from "./stream-start.ts";
import {
  type CloseReason,
  type Connection,
  resolveQueueOptions,
  type Sink,
  type SubscribeOptions,
  Subscriber,
  type SubscriberHost,
  type Subscription,
} from "./subscriber.ts";
import { TopicIndex } from "./topic-index.ts";
import { assertFits, type Update, type UpdateInput, validateUpdate } from "./update.ts";
import { type Updates, type UpdatesOptions, updatesOf } from "./updates.ts";
import { within } from "./within.ts";

export type { CloseOptions } from "./hub-close.ts";
export { HUB_DEFAULTS, type HubOptions } from "./hub-options.ts";
export type { HubStats } from "./hub-stats.ts";
export type { SubscribeOptions } from "./subscriber.ts";

/** Facts the hub reports. Listeners run synchronously: keep them cheap. */
export interface HubEvents {
  connect: [subscription: Subscription];
  disconnect: [subscription: Subscription, reason: CloseReason];
  publish: [update: Update];
  drop: [subscription: Subscription];
  error: [error: Error];
  /** `close()` has begun: streams are being ended (what watches the hub ends its own too). */
  closing: [];
}

const KEEP_ALIVE = { bytes: encodeComment() };

export class Hub extends EventEmitter<HubEvents> {
  readonly keepAliveMs: number;
  /** The `retry` hint, in ms, of the streams the hub ends when it closes (before jitter). */
  readonly closeRetryMs: number;
  readonly #backplane: Backplane;
  readonly #index = new TopicIndex();
  readonly #subscribers = new Set<Subscriber>();
  readonly #queue: ReturnType<typeof resolveQueueOptions>;
  readonly #ready: Promise<void>;
  readonly #keepAlive: NodeJS.Timeout | undefined;
  readonly #flushQueue: FlushQueue;
  readonly #pushback: Pushback;
  readonly #counters = new HubCounters();
  readonly #start: StreamStart;
  // Publishes on their way to the backplane; close() waits for them before closing it.
  readonly #inflight = new Set<Promise<unknown>>();
  // Publishes waiting for the backplane's answer.
  #storing = 0;
  #closing = false;
  #closed = false;

  // What subscribers see of the hub: kept private, so it is not part of the public API.
  readonly #host: SubscriberHost = {
    schedule: (subscriber) => this.#flushQueue.schedule(subscriber),
    join: (frames, bytes) => this.#flushQueue.join(frames, bytes),
    written: this.#counters.written,
    dropped: (subscriber) => {
      this.#counters.dropped++;
      this.#tell("drop", subscriber);
    },
    failed: (err) => this.#report(err),
    closed: (subscriber, reason) => {
      this.#subscribers.delete(subscriber);
      this.#index.delete(subscriber);
      this.#counters.disconnected(subscriber, reason);
      this.#tell("disconnect", subscriber, reason);
    },
  };

  constructor(options: HubOptions = {}) {
    super();
    if (typeof options !== "object" || options === null) {
      throw new CrierError("CRIER_ERR_INVALID_OPTION", "createHub takes an options object");
    }
    knownKeys(options, HUB_OPTION_KEYS, "createHub");
    this.keepAliveMs = durationOption("keepAliveMs", options.keepAliveMs, HUB_DEFAULTS.keepAliveMs);
    this.#queue = resolveQueueOptions(options.queue);
    this.#flushQueue = new FlushQueue(
      integerOption("flushWindowMs", options.flushWindowMs, HUB_DEFAULTS.flushWindowMs, 0, 1000),
      () => this.#storing > 0,
    );
    this.#pushback = new Pushback(options.pushback, this.#queue, this.#flushQueue);
    // Bounded so that the hint plus its jitter (up to as much again) stays an exact integer.
    this.closeRetryMs = durationOption(
      "closeRetryMs",
      options.closeRetryMs,
      HUB_DEFAULTS.closeRetryMs,
    );
    if (options.backplane !== undefined) backplaneArgument(options.backplane);
    this.#backplane = options.backplane ?? new LocalBackplane(options.history);
    this.#start = new StreamStart(this.#backplane, this.#counters.resumes, (err) =>
      this.#report(err),
    );
    const started = this.#backplane.start(
      (update) => this.#deliver(update),
      () => endAll(this.#subscribers, "reset", this.closeRetryMs),
    );
    const seed = () => this.#start.seed(this.#backplane.newestAtStart?.());
    if (started instanceof Promise) started.then(seed, () => {});
    else seed();
    const readyTimeoutMs = durationOption(
      "readyTimeoutMs",
      options.readyTimeoutMs,
      HUB_DEFAULTS.readyTimeoutMs,
    );
    this.#ready = started instanceof Promise ? within(started, readyTimeoutMs) : Promise.resolve();
    this.#ready.catch((err: unknown) => this.#report(err));
    if (this.keepAliveMs > 0) {
      this.#keepAlive = setInterval(() => this.#sendKeepAlive(), this.keepAliveMs);
      this.#keepAlive.unref();
    }
  }

  /**
   * Resolves once the backplane is delivering (at once for the in-memory one); rejects with
   * `CRIER_ERR_UNAVAILABLE` when it has not started within `readyTimeoutMs`.
   */
  ready(): Promise<void> {
    return this.#ready;
  }

  get stats(): HubStats {
    return this.#counters.snapshot(
      this.#subscribers.size,
      this.#flushQueue.backlog,
      this.#pushback.stats,
    );
  }

  /**
   * Frames and bytes waiting in all subscribers' queues now. Visits every subscriber: read it
   * when asked (a metrics scrape), not per event.
   */
  get queued(): { readonly events: number; readonly bytes: number } {
    return queuedIn(this.#subscribers);
  }

  /** True from the start of {@link close}: new subscriptions are refused. */
  get closing(): boolean {
    return this.#closing;
  }

  /** How many updates the history holds, when the backplane can tell (`undefined` otherwise). */
  async historySize(): Promise<number | undefined> {
    return this.#backplane.size?.();
  }

  /** The id of the newest stored update (`undefined`: none yet). */
  async lastEventId(): Promise<string | undefined> {
    return this.#backplane.lastEventId();
  }

  /**
   * A directory shared with every node of the backplane (see `Backplane.directory`), or
   * `undefined` when the backplane has none (a single in-memory node).
   */
  directory(name: string, ttlMs: number): SharedDirectory | undefined {
    return this.#backplane.directory?.(name, ttlMs);
  }

  /**
   * Stores the update and delivers it to every matching subscriber. Resolves with the stored
   * update (its `id` is the event id) once the backplane holds it; rejects with a `CrierError`
   * for invalid input (`CRIER_ERR_INVALID_EVENT`, `CRIER_ERR_BAD_REQUEST`), an update whose
   * encoded frame is larger than `queue.maxBytes` (`CRIER_ERR_PAYLOAD_TOO_LARGE`), a duplicate
   * id, an unavailable backplane, a closed hub, or a fan-out backlog past `pushback`'s refuse
   * threshold (`CRIER_ERR_OVERLOADED`, nothing stored). Past its hold threshold it resolves once
   * the update has been written to every subscriber whose socket can take it.
   */
  async publish(input: UpdateInput): Promise<Update> {
    if (this.#closed) throw new CrierError("CRIER_ERR_HUB_CLOSED", "the hub is closed");
    const fields = validateUpdate(input);
    assertFits(fields, this.#queue.maxBytes);
    this.#pushback.admit();
    const stored = this.#backplane.publish(fields);
    this.#inflight.add(stored);
    this.#storing++;
    try {
      let update: Update;
      try {
        update = await stored;
      } finally {
        this.#storing--;
      }
      return await this.#pushback.hold(update);
    } finally {
      this.#inflight.delete(stored);
    }
  }

  /**
   * Attaches a subscriber writing to any {@link Sink}: the transport-independent way in, which
   * every adapter (node:http: `subscribeNode`) calls. The subscriber is registered before
   * anything is read from the history, so no update can fall between the replay and the live
   * stream. The adapter reports `drain` and the peer's going away on the returned connection.
   */
  connect(sink: Sink, options: SubscribeOptions): Connection {
    if (this.#closing) {
      throw new CrierError("CRIER_ERR_HUB_CLOSED", "the hub is shutting down; retry later");
    }
    const subscriber = new Subscriber(sink, this.#host, options, this.#queue);
    this.#subscribers.add(subscriber);
    this.#index.add(subscriber);
    this.#counters.connected(subscriber, sink.kind);
    this.#tell("connect", subscriber);
    this.#start.open(subscriber, options);
    return subscriber;
  }

  /**
   * An in-process subscription: `for await (const update of hub.updates({ topics }))`. Same
   * selectors, resume (`lastEventId`; see `earliest`) and bounded queue as a network subscriber:
   * a consumer that falls behind gets a `CRIER_ERR_OVERFLOW` error from the loop, never
   * unbounded memory. Ends when `signal` aborts, on `break`, or when the hub closes.
   */
  updates(options: UpdatesOptions): Updates {
    return updatesOf(this, options);
  }

  /**
   * Stops the hub: no more subscriptions or publishes; every subscriber gets a `retry` hint and
   * its stream is ended; publishes already on their way (including those that `disconnect`
   * listeners make as the streams end) are stored; then the backplane is closed. Publishes are
   * accepted until the last stream has ended. Idempotent.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing) return;
    // Checked first: a refused option must leave the hub open, and a later close() able to run.
    if (typeof options !== "object" || options === null) {
      throw new CrierError("CRIER_ERR_INVALID_OPTION", "close takes options { spreadMs? }");
    }
    const spreadMs = durationOption("spreadMs", options.spreadMs, 0);
    this.#closing = true;
    this.#tell("closing");
    // Without a spread the streams end in this same turn, and publishes are refused from here.
    if (spreadMs > 0) await endSpread(this.#subscribers, spreadMs, this.closeRetryMs);
    clearInterval(this.#keepAlive);
    endAll(this.#subscribers, "shutdown", this.closeRetryMs);
    this.#closed = true;
    await Promise.allSettled(this.#inflight);
    await this.#backplane.close();
  }

  readonly #offer = (subscriber: Subscriber): void => {
    if (!subscriber.isDenied(this.#current as Update)) subscriber.offer(this.#current as Update);
  };
  #current: Update | undefined;

  #deliver(update: Update): void {
    this.#counters.published++;
    this.#start.delivered(update);
    this.#current = update;
    this.#index.forEachMatch(update.topics, this.#offer);
    this.#flushQueue.accepted(update.bytes.length);
    this.#current = undefined;
    this.#tell("publish", update);
  }

  #sendKeepAlive(): void {
    for (const subscriber of this.#subscribers) subscriber.tick(KEEP_ALIVE);
  }

  // Listeners run synchronously: one that throws must not leave the hub half-way through what
  // it was doing (a close, a fan-out, a socket's close handler), so its error is reported.
  #tell<K extends keyof HubEvents>(event: K, ...args: HubEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: HubEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.#report(err);
    }
  }

  // Runtime failures are reported, never thrown into the caller's event loop, and never
  // dropped: with no `error` listener they become a process warning.
  #report(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.listenerCount("error") > 0) this.emit("error", error);
    else process.emitWarning(error);
  }
}

/** Creates a hub. See {@link HubOptions} for the defaults. */
export function createHub(options: HubOptions = {}): Hub {
  return new Hub(options);
}

/** Throws unless `value` has a backplane's methods (duck-typed, as the engines are classes of their own). */
function backplaneArgument(value: unknown): asserts value is Backplane {
  const methods = ["start", "publish", "replay", "lastEventId", "close"] as const;
  const missing =
    typeof value === "object" && value !== null
      ? methods.filter((m) => typeof (value as Record<string, unknown>)[m] !== "function")
      : methods;
  if (missing.length > 0) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `backplane must implement Backplane (${methods.join(", ")}); ${missing.join(", ")} missing`,
    );
  }
}
