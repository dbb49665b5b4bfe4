/**
 * The hub: takes updates from publishers, stores them through its backplane, and fans each one
 * out to every matching subscriber. It owns the topic index, the per-turn flush and the one
 * keep-alive timer; transports plug in through a {@link Sink} (see `adapters/`): the hub knows
 * no transport and no protocol.
 */
import { EventEmitter } from "node:events";
import type { Backplane, SharedDirectory } from "./backplane/backplane.ts";
import { LocalBackplane } from "./backplane/local.ts";
import { encodeComment, encodeRetry } from "./encoder.ts";
import { CrierError } from "./errors.ts";
import { type FanOutBacklog, FlushQueue } from "./flush-queue.ts";
import { streamHead } from "./head.ts";
import type { MemoryHistoryOptions } from "./history/memory.ts";
import { integerOption } from "./options.ts";
import { Pushback, type PushbackOptions, type PushbackStats } from "./pushback.ts";
import type { Selector } from "./selectors/selector.ts";
import {
  type CloseReason,
  type Connection,
  type QueueOptions,
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

/** Defaults of {@link HubOptions}. */
export const HUB_DEFAULTS = {
  keepAliveMs: 15_000,
  closeRetryMs: 1000,
  readyTimeoutMs: 10_000,
  flushWindowMs: 5,
} as const;

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
   * How long {@link Hub.ready} waits for the backplane to start, in ms, before it rejects with
   * `CRIER_ERR_UNAVAILABLE` (e.g. Redis unreachable). The backplane keeps trying afterwards;
   * close the hub to stop it. Default 10,000; `0` waits as long as it takes.
   */
  readonly readyTimeoutMs?: number | undefined;
  /**
   * The least time, in ms, between the end of one flush to subscribers and the start of the
   * next (`flush-queue.ts`): under a publish flood the hub reads more publishes between flushes
   * and writes each subscriber more updates per write; after a quiet spell an update is written
   * at once. Default 5; `0`: flush on every event-loop turn that has something to write.
   */
  readonly flushWindowMs?: number | undefined;
  /** When publishes wait or are refused under a fan-out backlog (`pushback.ts`); `false`: never. */
  readonly pushback?: PushbackOptions | false | undefined;
}

export type { SubscribeOptions } from "./subscriber.ts";

/** Facts the hub reports. Listeners run synchronously: keep them cheap. */
export interface HubEvents {
  connect: [subscription: Subscription];
  disconnect: [subscription: Subscription, reason: CloseReason];
  publish: [update: Update];
  drop: [subscription: Subscription];
  error: [error: Error];
}

/**
 * Counters since the hub started, kept as the hub goes (once per publish, connect, disconnect or
 * write, never per frame), so reading them costs nothing. `subscribers` and `selectors` are
 * live counts; the rest only grow.
 */
export interface HubStats {
  readonly subscribers: number;
  readonly published: number;
  readonly evicted: number;
  readonly dropped: number;
  /** Subscriptions connected since the start, by the kind of their sink (`node-socket`, …). */
  readonly sinks: Readonly<Record<string, number>>;
  /** Selectors of the live subscriptions, by kind (`exact`, `template`, `urlpattern`, `any`). */
  readonly selectors: Readonly<Record<Selector["kind"], number>>;
  /** Subscriptions ended since the start, by reason. */
  readonly disconnects: Readonly<Partial<Record<CloseReason, number>>>;
  /** Updates written to subscribers (replayed ones included; keep-alives not). */
  readonly delivered: number;
  /** Bytes handed to subscribers' sinks (heads excluded). */
  readonly bytesWritten: number;
  /** Subscriptions that asked to resume, and those of them told `earliest` (their id was gone). */
  readonly resumes: { readonly total: number; readonly earliest: number };
  /** Updates accepted and not yet written to the sockets that can take them (flush-queue.ts). */
  readonly backlog: FanOutBacklog;
  /** Publishes held or refused under the fan-out backlog. */
  readonly pushback: PushbackStats;
}

/** Options of {@link Hub.close}. */
export interface CloseOptions {
  /**
   * Spread the ending of the open streams over this many ms instead of ending them at once, so
   * their clients do not all come back in the same instant; each also gets its `retry` hint
   * with up to as much again of random jitter. Default 0: all at once, no jitter.
   */
  readonly spreadMs?: number | undefined;
}

const KEEP_ALIVE = { bytes: encodeComment() };

export class Hub extends EventEmitter<HubEvents> {
  readonly keepAliveMs: number;
  readonly #backplane: Backplane;
  readonly #index = new TopicIndex();
  readonly #subscribers = new Set<Subscriber>();
  readonly #queue: ReturnType<typeof resolveQueueOptions>;
  readonly #closeRetryMs: number;
  readonly #ready: Promise<void>;
  readonly #keepAlive: NodeJS.Timeout | undefined;
  readonly #flushQueue: FlushQueue;
  readonly #pushback: Pushback;
  // Publishes on their way to the backplane; close() waits for them before closing it.
  readonly #inflight = new Set<Promise<unknown>>();
  #closing = false;
  #closed = false;
  #published = 0;
  #evicted = 0;
  #dropped = 0;
  readonly #sinks: Record<string, number> = {};
  readonly #selectors: Record<Selector["kind"], number> = {
    exact: 0,
    template: 0,
    urlpattern: 0,
    any: 0,
  };
  readonly #disconnects: Partial<Record<CloseReason, number>> = {};
  readonly #written = { events: 0, bytes: 0 };
  readonly #resumes = { total: 0, earliest: 0 };

  // What subscribers see of the hub: kept private, so it is not part of the public API.
  readonly #host: SubscriberHost = {
    schedule: (subscriber) => this.#flushQueue.schedule(subscriber),
    join: (frames, bytes) => this.#flushQueue.join(frames, bytes),
    written: this.#written,
    dropped: (subscriber) => {
      this.#dropped++;
      this.emit("drop", subscriber);
    },
    closed: (subscriber, reason) => {
      this.#subscribers.delete(subscriber);
      this.#index.delete(subscriber);
      if (reason === "overflow" || reason === "stalled") this.#evicted++;
      this.#disconnects[reason] = (this.#disconnects[reason] ?? 0) + 1;
      for (const selector of subscriber.selectors) this.#selectors[selector.kind]--;
      this.emit("disconnect", subscriber, reason);
    },
  };

  constructor(options: HubOptions = {}) {
    super();
    if (typeof options !== "object" || options === null) {
      throw new CrierError("CRIER_ERR_INVALID_OPTION", "createHub takes an options object");
    }
    this.keepAliveMs = integerOption("keepAliveMs", options.keepAliveMs, HUB_DEFAULTS.keepAliveMs);
    this.#queue = resolveQueueOptions(options.queue);
    this.#flushQueue = new FlushQueue(
      integerOption("flushWindowMs", options.flushWindowMs, HUB_DEFAULTS.flushWindowMs, 0, 1000),
    );
    this.#pushback = new Pushback(options.pushback, this.#queue, this.#flushQueue);
    this.#closeRetryMs = integerOption(
      "closeRetryMs",
      options.closeRetryMs,
      HUB_DEFAULTS.closeRetryMs,
    );
    this.#backplane = options.backplane ?? new LocalBackplane(options.history);
    const started = this.#backplane.start(
      (update) => this.#deliver(update),
      () => this.#resetAll(),
    );
    const readyTimeoutMs = integerOption(
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
    return {
      subscribers: this.#subscribers.size,
      published: this.#published,
      evicted: this.#evicted,
      dropped: this.#dropped,
      sinks: { ...this.#sinks },
      selectors: { ...this.#selectors },
      disconnects: { ...this.#disconnects },
      delivered: this.#written.events,
      bytesWritten: this.#written.bytes,
      resumes: { ...this.#resumes },
      backlog: this.#flushQueue.backlog,
      pushback: this.#pushback.stats,
    };
  }

  /**
   * Frames and bytes waiting in all subscribers' queues now. Visits every subscriber: read it
   * when asked (a metrics scrape), not per event.
   */
  get queued(): { readonly events: number; readonly bytes: number } {
    let events = 0;
    let bytes = 0;
    for (const subscriber of this.#subscribers) {
      const queued = subscriber.queued;
      events += queued.events;
      bytes += queued.bytes;
    }
    return { events, bytes };
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
    try {
      return await this.#pushback.hold(await stored);
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
    if (sink.kind !== undefined) this.#sinks[sink.kind] = (this.#sinks[sink.kind] ?? 0) + 1;
    for (const selector of subscriber.selectors) this.#selectors[selector.kind]++;
    this.emit("connect", subscriber);
    const lastEventId = options.lastEventId;
    const fail = (err: unknown) => this.#fail(subscriber, err);
    if (lastEventId === undefined) {
      // [spec] The hub MUST NOT disclose, via this header, the identifier of any event the
      // subscriber is not authorized to receive. So: the newest id it may see, else none.
      const newest = this.#newest;
      const last =
        newest === undefined || subscriber.isDenied(newest) ? this.#newestPublic : newest.id;
      settle(last, () => subscriber.open(streamHead(options.headers, last), []), fail);
      return subscriber;
    }
    this.#resumes.total++;
    settle(
      this.#backplane.replay(lastEventId),
      (replay) => {
        if (replay === undefined) this.#resumes.earliest++;
        const resumed = replay === undefined ? "earliest" : lastEventId;
        // Replayed updates are filtered against the current token, like live ones.
        const updates = replay?.updates.filter((update) => subscriber.wants(update)) ?? [];
        const more = replay?.more;
        // A later page that cannot be read ends the stream (the client resumes again); the
        // failure is reported like that of a first page.
        const pages =
          more &&
          (async (maxBytes?: number) => {
            try {
              return await more(maxBytes);
            } catch (err) {
              this.#report(err);
              throw err;
            }
          });
        subscriber.open(streamHead(options.headers, resumed), updates, replay?.skip, pages);
      },
      fail,
    );
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
    this.#closing = true;
    const spreadMs = integerOption("spreadMs", options.spreadMs, 0);
    if (spreadMs > 0) await this.#closeSpread(spreadMs);
    clearInterval(this.#keepAlive);
    const retry = encodeRetry(this.#closeRetryMs);
    for (const subscriber of [...this.#subscribers]) subscriber.close("shutdown", retry);
    this.#closed = true;
    await Promise.allSettled(this.#inflight);
    await this.#backplane.close();
  }

  // Ends the streams open now in even steps over `spreadMs`: at each step, as many as the time
  // elapsed calls for. Each gets a retry hint of closeRetryMs plus up to as much again of jitter,
  // so the reconnections spread out too.
  async #closeSpread(spreadMs: number): Promise<void> {
    const open = [...this.#subscribers];
    const steps = Math.max(1, Math.min(open.length, 50));
    const started = Date.now();
    let done = 0;
    for (let step = 1; step <= steps; step++) {
      const at = started + (spreadMs * step) / steps;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));
      const upTo = Math.round((open.length * step) / steps);
      for (; done < upTo; done++) {
        const jitter = Math.floor(Math.random() * (this.#closeRetryMs + 1));
        (open[done] as Subscriber).close("shutdown", encodeRetry(this.#closeRetryMs + jitter));
      }
    }
  }

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
    this.#flushQueue.accepted(update.bytes.length);
    this.#current = undefined;
    this.emit("publish", update);
  }

  // The backplane's history was replaced: what the live streams were resumable from is gone and
  // they may have missed updates. Each is ended with a retry hint; its client resumes with its
  // last id and is told `earliest`, an explicit gap instead of a silent one.
  #resetAll(): void {
    const retry = encodeRetry(this.#closeRetryMs);
    for (const subscriber of [...this.#subscribers]) subscriber.close("reset", retry);
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
