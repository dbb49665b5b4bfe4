/**
 * Prometheus metrics of a hub, read at scrape time: the hub already counts what matters
 * (`hub.stats`), so a scrape reads those counters and nothing is added to the path of an event.
 * Publish outcomes come from the Mercure routes' diagnostics channel; backplane state from its
 * `up`/`down` facts. This file is the `crier-hub/metrics` entry point, so that importing `crier-hub`
 * never loads prom-client:
 *
 *   import { Registry } from "prom-client";
 *   import { registerMetrics } from "crier-hub/metrics";
 *   const metrics = registerMetrics({ hub, registry: new Registry() });
 *   app.get("/metrics", metrics.handler);
 */
import diagnostics from "node:diagnostics_channel";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { NodeRequest, NodeResponse } from "../adapters/node.ts";
import { CrierError } from "../errors.ts";
import type { Hub } from "../hub.ts";
import { PUBLISH_CHANNEL, type PublishMessage } from "../mercure/http/channels.ts";
import { hubArgument, objectArgument } from "../options.ts";
import type { CloseReason } from "../subscriber.ts";
import { VERSION } from "./build.ts";

export { type AvailableBackplane, Readiness } from "./health.ts";

/** A backplane whose availability can be watched (`RedisBackplane`). */
export interface WatchedBackplane {
  readonly available: boolean;
}

/** Options of {@link registerMetrics}. */
export interface MetricsOptions {
  readonly hub: Hub;
  /** Where the metrics go. Default: a new registry of their own. */
  readonly registry?: Registry | undefined;
  /** Adds `crier_backplane_up` for this backplane. Default: none (the metric is absent). */
  readonly backplane?: WatchedBackplane | undefined;
  /**
   * Also collect prom-client's default Node.js metrics (event-loop delay, heap, GC, …). Default
   * false: an app usually collects them once itself; the standalone hub turns it on.
   */
  readonly defaultMetrics?: boolean | undefined;
}

/** The registered metrics. */
export interface Metrics {
  readonly registry: Registry;
  /** A node:http listener answering with the registry's text exposition. */
  readonly handler: (req: NodeRequest, res: NodeResponse) => void;
  /** Stops listening to publish outcomes and removes the metrics from the registry. */
  close(): void;
}

const REASONS: readonly CloseReason[] = [
  "client",
  "overflow",
  "stalled",
  "shutdown",
  "closed",
  "expired",
  "reset",
];

/**
 * Registers Crier's metrics for `hub` (names in README, "Operations"). Several hubs in one
 * process need one registry each; publish outcomes are counted for every Mercure handler of the
 * process.
 */
export function registerMetrics(options: MetricsOptions): Metrics {
  objectArgument(options, "registerMetrics needs options: { hub, registry?, backplane? }");
  hubArgument(options.hub, "registerMetrics's hub option");
  const { hub, backplane } = options;
  const registry = options.registry ?? new Registry();
  const { getSingleMetric, registerMetric } = registry as Partial<Registry>;
  if (typeof getSingleMetric !== "function" || typeof registerMetric !== "function") {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "registerMetrics's registry option must be a prom-client Registry",
    );
  }
  // One hub per registry: prom-client would throw its own error at the first name taken.
  if (registry.getSingleMetric("crier_subscribers") !== undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "this registry already holds Crier's metrics (of another hub, or of a first call): give each hub a registry of its own",
    );
  }
  const registers = [registry];
  const names: string[] = [];
  const gauge = (
    name: string,
    help: string,
    read: (g: Gauge) => void | Promise<void>,
    labelNames: string[] = [],
  ) => {
    names.push(name);
    return new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        await read(this);
      },
    });
  };
  const counter = (
    name: string,
    help: string,
    read?: (c: Counter) => void,
    labelNames: string[] = [],
  ) => {
    names.push(name);
    return new Counter({
      name,
      help,
      labelNames,
      registers,
      ...(read === undefined
        ? {}
        : {
            collect() {
              this.reset();
              read(this);
            },
          }),
    });
  };

  gauge("crier_subscribers", "Subscriptions connected now.", (g) => g.set(hub.stats.subscribers));
  gauge(
    "crier_subscription_selectors",
    "Selectors of the connected subscriptions, by kind.",
    (g) => {
      for (const [kind, n] of Object.entries(hub.stats.selectors)) g.set({ kind }, n);
    },
    ["kind"],
  );
  const publishes = counter(
    "crier_publishes_total",
    "Publish requests answered, by outcome (accepted, a 4xx code, unavailable) and status.",
    undefined,
    ["outcome", "status"],
  );
  counter("crier_published_total", "Updates delivered by the backplane to this node.", (c) =>
    c.inc(hub.stats.published),
  );
  counter(
    "crier_events_delivered_total",
    "Updates written to subscribers (replays included).",
    (c) => c.inc(hub.stats.delivered),
  );
  counter("crier_bytes_written_total", "Bytes written to subscribers' streams.", (c) =>
    c.inc(hub.stats.bytesWritten),
  );
  counter(
    "crier_disconnects_total",
    "Subscriptions ended, by reason.",
    (c) => {
      const disconnects = hub.stats.disconnects;
      for (const reason of REASONS) c.inc({ reason }, disconnects[reason] ?? 0);
    },
    ["reason"],
  );
  counter("crier_updates_dropped_total", "Updates dropped by the `drop` overflow policy.", (c) =>
    c.inc(hub.stats.dropped),
  );
  counter("crier_resumes_total", "Subscriptions that resumed with a last event id.", (c) =>
    c.inc(hub.stats.resumes.total),
  );
  counter(
    "crier_resumes_earliest_total",
    "Resumes whose id the history no longer held (told `earliest`).",
    (c) => c.inc(hub.stats.resumes.earliest),
  );
  gauge("crier_queued_bytes", "Bytes waiting in all subscribers' queues.", (g) =>
    g.set(hub.queued.bytes),
  );
  // The fan-out backlog is per event-loop turn: a scrape sees it when a turn's flush is late;
  // the two counters say how often publishers were pushed back.
  gauge(
    "crier_backlog_seconds",
    "Age of the oldest update accepted and not yet written to the sockets that can take it.",
    (g) => g.set(hub.stats.backlog.ageMs / 1000),
  );
  gauge("crier_backlog_updates", "Updates accepted and not yet written (fan-out backlog).", (g) =>
    g.set(hub.stats.backlog.updates),
  );
  gauge("crier_backlog_bytes", "Encoded bytes of the fan-out backlog, each update once.", (g) =>
    g.set(hub.stats.backlog.bytes),
  );
  counter(
    "crier_publishes_held_total",
    "Publishes whose answer waited for the fan-out backlog (stored all the same).",
    (c) => c.inc(hub.stats.pushback.held),
  );
  counter(
    "crier_publishes_refused_total",
    "Publishes refused under the fan-out backlog (`503`, nothing stored).",
    (c) => c.inc(hub.stats.pushback.refused),
  );
  gauge("crier_history_events", "Updates the history holds.", async (g) => {
    // An unavailable backplane cannot say; the last value stands (backplane_up says why).
    const size = await hub.historySize().catch(() => undefined);
    if (size !== undefined) g.set(size);
  });
  if (backplane !== undefined) {
    gauge("crier_backplane_up", "1 while the backplane answers, 0 while it does not.", (g) =>
      g.set(backplane.available ? 1 : 0),
    );
  }
  gauge(
    "crier_build_info",
    "Always 1; the labels say which build runs.",
    (g) => g.set({ version: VERSION, node: process.version }, 1),
    ["version", "node"],
  );
  if (options.defaultMetrics === true) collectDefaultMetrics({ register: registry });

  const onPublish = (message: unknown) => {
    const { status, code } = message as PublishMessage;
    const outcome =
      status === 200 ? "accepted" : status === 503 ? "unavailable" : (code ?? "error");
    publishes.inc({ outcome, status: String(status) });
  };
  diagnostics.subscribe(PUBLISH_CHANNEL, onPublish);

  return {
    registry,
    handler: (_req, res) => {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "Content-Type": registry.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
          res.end("metrics could not be collected\n");
        },
      );
    },
    close() {
      diagnostics.unsubscribe(PUBLISH_CHANNEL, onPublish);
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}
