/**
 * The hub's counters: what `hub.stats` reports (metrics, the dashboard and logs read it), kept
 * as the hub goes.
 *
 *   connect ──connected()──▶ sinks, selectors      publish ──▶ published
 *   end     ──disconnected()──▶ disconnects, evicted, selectors
 *   flush   ──▶ written (by the subscriber, once per write)    resume ──▶ resumes
 *
 * Invariant: a counter moves once per publish, connect, disconnect, resume or write, never per
 * frame, so keeping them adds nothing to the per-event path and reading them costs a copy.
 * `subscribers` and `selectors` are live counts; the rest only grow.
 */
import type { FanOutBacklog } from "./flush-queue.ts";
import type { PushbackStats } from "./pushback.ts";
import type { Selector } from "./selectors/selector.ts";
import type { CloseReason } from "./subscription.ts";

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

/** What the counters need of a subscriber. */
interface Counted {
  readonly selectors: readonly Selector[];
}

export class HubCounters {
  published = 0;
  dropped = 0;
  /** Added to by the subscribers themselves, once per write (`SubscriberHost.written`). */
  readonly written = { events: 0, bytes: 0 };
  /** Added to by the resume path (`stream-start.ts`). */
  readonly resumes = { total: 0, earliest: 0 };
  #evicted = 0;
  readonly #sinks: Record<string, number> = {};
  readonly #selectors: Record<Selector["kind"], number> = {
    exact: 0,
    template: 0,
    urlpattern: 0,
    any: 0,
  };
  readonly #disconnects: Partial<Record<CloseReason, number>> = {};

  /** A subscriber was registered, writing to a sink of this kind. */
  connected(subscriber: Counted, sinkKind: string | undefined): void {
    if (sinkKind !== undefined) this.#sinks[sinkKind] = (this.#sinks[sinkKind] ?? 0) + 1;
    for (const selector of subscriber.selectors) this.#selectors[selector.kind]++;
  }

  /** A subscriber ended; `overflow` and `stalled` count as evictions. */
  disconnected(subscriber: Counted, reason: CloseReason): void {
    if (reason === "overflow" || reason === "stalled") this.#evicted++;
    this.#disconnects[reason] = (this.#disconnects[reason] ?? 0) + 1;
    for (const selector of subscriber.selectors) this.#selectors[selector.kind]--;
  }

  /** The counters now, with the figures the hub reads from elsewhere. */
  snapshot(subscribers: number, backlog: FanOutBacklog, pushback: PushbackStats): HubStats {
    return {
      subscribers,
      published: this.published,
      evicted: this.#evicted,
      dropped: this.dropped,
      sinks: { ...this.#sinks },
      selectors: { ...this.#selectors },
      disconnects: { ...this.#disconnects },
      delivered: this.written.events,
      bytesWritten: this.written.bytes,
      resumes: { ...this.resumes },
      backlog,
      pushback,
    };
  }
}

/**
 * Frames and bytes waiting in all these subscribers' queues now. Visits every subscriber: read
 * it when asked (a metrics scrape), not per event.
 */
export function queuedIn(
  subscribers: Iterable<{ readonly queued: { readonly events: number; readonly bytes: number } }>,
): { readonly events: number; readonly bytes: number } {
  let events = 0;
  let bytes = 0;
  for (const subscriber of subscribers) {
    const queued = subscriber.queued;
    events += queued.events;
    bytes += queued.bytes;
  }
  return { events, bytes };
}
