/**
 * The live figures of the dashboard: one sample of the hub's counters per second, kept for the
 * last minutes, and the busiest topics. It reads `hub.stats` once a second and hears each update
 * once (the hub's `publish` fact, per update, never per subscriber), so an open dashboard adds
 * nothing to the path of an event to its subscribers.
 *
 *   every second: hub.stats ──▶ sample { t, subscribers, publishes/s, deliveries/s } ──▶ ring
 *                                                                            └──▶ listeners
 *
 * The invariant: memory is bounded whatever the traffic: the ring holds `windowSeconds`
 * samples, the topic counts at most `maxTopics` names per minute (the rest are counted as
 * `otherTopics`), each cut to its first 256 characters (a topic may be up to the body limit
 * long, and every snapshot names the busiest).
 */
import type { Hub } from "../hub.ts";
import { SUBSCRIPTIONS_PATH } from "../mercure/paths.ts";
import { integerOption } from "../options.ts";
import type { Update } from "../update.ts";
import { VERSION } from "./build.ts";
import type { AvailableBackplane } from "./health.ts";

/** Defaults of {@link DashboardOptions}. */
export const DASHBOARD_DEFAULTS = {
  windowSeconds: 300,
  maxTopics: 10_000,
  busiest: 10,
  topicChars: 256,
} as const;

/** Options of {@link Dashboard}. */
export interface DashboardOptions {
  /** Reports `backplane: "up" | "down"` for this backplane. Default none (`"memory"`). */
  readonly backplane?: AvailableBackplane | undefined;
  /**
   * Serve the figures without a token. Only for dev mode, where the key is thrown away with the
   * process: the figures name topics. Default false: a token with the `admin` right is needed.
   */
  readonly open?: boolean | undefined;
  /** Seconds of history the chart shows (one sample a second). Default 300. */
  readonly windowSeconds?: number | undefined;
  /** Distinct topics counted per minute for the busiest list; past it, `otherTopics`. Default 10,000. */
  readonly maxTopics?: number | undefined;
}

/** One second of the hub. */
export interface DashboardSample {
  /** Epoch ms at the end of the second. */
  readonly t: number;
  readonly subscribers: number;
  /** Updates the backplane delivered to this node per second. */
  readonly publishesPerSec: number;
  /** Updates written to subscribers per second (replays included). */
  readonly deliveriesPerSec: number;
}

/** What the dashboard page shows, as `/dashboard.json` serves it. */
export interface DashboardSnapshot {
  readonly at: number;
  readonly version: string;
  readonly node: string;
  readonly uptimeSeconds: number;
  readonly subscribers: number;
  readonly published: number;
  readonly delivered: number;
  readonly bytesWritten: number;
  readonly dropped: number;
  readonly queuedBytes: number;
  readonly historyEvents: number | null;
  readonly selectors: Readonly<Record<string, number>>;
  readonly disconnects: Readonly<Record<string, number>>;
  readonly backplane: "memory" | "up" | "down";
  readonly closing: boolean;
  /** Most published topics of the last one to two minutes, busiest first. */
  readonly topics: readonly { readonly topic: string; readonly updates: number }[];
  /** Updates to topics past `maxTopics` in the same span. */
  readonly otherTopics: number;
  readonly series: readonly DashboardSample[];
}

/** A listener of {@link Dashboard.watch}: called with each new snapshot, once a second. */
export type SnapshotListener = (snapshot: DashboardSnapshot) => void;

export class Dashboard {
  /** Whether the figures are served without a token (dev mode). */
  readonly open: boolean;
  readonly #hub: Hub;
  readonly #backplane: AvailableBackplane | undefined;
  readonly #window: number;
  readonly #maxTopics: number;
  readonly #series: DashboardSample[] = [];
  readonly #listeners = new Set<SnapshotListener>();
  readonly #started = Date.now();
  // Topic counts of this minute and the one before: the busiest list spans one to two minutes.
  #topics = new Map<string, number>();
  #previous = new Map<string, number>();
  #other = 0;
  #previousOther = 0;
  #minute = 0;
  #last: { t: number; published: number; delivered: number };
  #history: number | null = null;
  readonly #timer: NodeJS.Timeout;

  constructor(hub: Hub, options: DashboardOptions = {}) {
    this.#hub = hub;
    this.#backplane = options.backplane;
    this.open = options.open === true;
    this.#window = integerOption(
      "windowSeconds",
      options.windowSeconds,
      DASHBOARD_DEFAULTS.windowSeconds,
      1,
    );
    this.#maxTopics = integerOption(
      "maxTopics",
      options.maxTopics,
      DASHBOARD_DEFAULTS.maxTopics,
      1,
    );
    const { published, delivered } = hub.stats;
    this.#last = { t: Date.now(), published, delivered };
    hub.on("publish", this.#count);
    // The streams of the figures end with the hub's, not at the next second's sample: an open
    // dashboard must not hold a drain up.
    hub.once("closing", this.#sampleNow);
    this.#timer = setInterval(() => this.#sample(), 1000);
    // The dashboard never keeps a process alive by itself.
    this.#timer.unref();
  }

  /** The figures now. */
  snapshot(): DashboardSnapshot {
    const stats = this.#hub.stats;
    const busiest = new Map(this.#previous);
    for (const [topic, n] of this.#topics) busiest.set(topic, (busiest.get(topic) ?? 0) + n);
    const topics = [...busiest]
      .sort((a, b) => b[1] - a[1])
      .slice(0, DASHBOARD_DEFAULTS.busiest)
      .map(([topic, updates]) => ({ topic, updates }));
    return {
      at: Date.now(),
      version: VERSION,
      node: process.version,
      uptimeSeconds: Math.round((Date.now() - this.#started) / 1000),
      subscribers: stats.subscribers,
      published: stats.published,
      delivered: stats.delivered,
      bytesWritten: stats.bytesWritten,
      dropped: stats.dropped,
      queuedBytes: this.#hub.queued.bytes,
      historyEvents: this.#history,
      selectors: stats.selectors,
      disconnects: stats.disconnects,
      backplane:
        this.#backplane === undefined ? "memory" : this.#backplane.available ? "up" : "down",
      closing: this.#hub.closing,
      topics,
      otherTopics: this.#other + this.#previousOther,
      series: [...this.#series],
    };
  }

  /** Calls `listener` with each new snapshot until the returned function is called. */
  watch(listener: SnapshotListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops sampling and forgets the listeners. Idempotent. */
  close(): void {
    clearInterval(this.#timer);
    this.#hub.off("publish", this.#count);
    this.#hub.off("closing", this.#sampleNow);
    this.#listeners.clear();
  }

  readonly #count = (update: Update): void => {
    // The canonical topic names the update; its alternates would count it twice.
    const topic = update.topics[0] as string;
    // The hub's own subscription events (`--subscriptions`) each have a topic of their own, one
    // per connection: counted by name, they would push the published topics out of the list
    // (and, with anonymous subscribers, fill it with names any client chooses).
    if (topic.startsWith(`${SUBSCRIPTIONS_PATH}/`)) return;
    const name = shortTopic(topic);
    const n = this.#topics.get(name);
    if (n !== undefined) this.#topics.set(name, n + 1);
    else if (this.#topics.size < this.#maxTopics) this.#topics.set(name, 1);
    else this.#other++;
  };

  readonly #sampleNow = (): void => this.#sample();

  #sample(): void {
    const now = Date.now();
    const { subscribers, published, delivered } = this.#hub.stats;
    const seconds = Math.max(0.001, (now - this.#last.t) / 1000);
    this.#series.push({
      t: now,
      subscribers,
      publishesPerSec: Math.round((published - this.#last.published) / seconds),
      deliveriesPerSec: Math.round((delivered - this.#last.delivered) / seconds),
    });
    if (this.#series.length > this.#window) this.#series.shift();
    this.#last = { t: now, published, delivered };
    if (++this.#minute >= 60) {
      this.#minute = 0;
      this.#previous = this.#topics;
      this.#previousOther = this.#other;
      this.#topics = new Map();
      this.#other = 0;
    }
    // An unavailable backplane cannot say; the last value stands (`backplane` says why).
    this.#hub.historySize().then(
      (size) => {
        if (size !== undefined) this.#history = size;
      },
      () => {},
    );
    if (this.#listeners.size > 0) {
      const snapshot = this.snapshot();
      for (const listener of this.#listeners) listener(snapshot);
    }
    // The listeners have heard `closing: true` (and end their streams); nothing more to say.
    if (this.#hub.closing) this.close();
  }
}

/** A topic as the busiest list names it: its first `topicChars` characters, then `…`. */
export function shortTopic(topic: string): string {
  const max = DASHBOARD_DEFAULTS.topicChars;
  if (topic.length <= max) return topic;
  // Not between the two halves of a surrogate pair.
  const code = topic.charCodeAt(max - 1);
  const cut = code >= 0xd800 && code <= 0xdbff ? max - 1 : max;
  return `${topic.slice(0, cut)}…`;
}
