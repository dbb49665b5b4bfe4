/**
 * The load generator: opens N raw-socket SSE subscriptions, runs publishing phases, verifies
 * every delivery and reports one JSON result. Run it as its own process (pinned to its own
 * core) with the config as argv[2]: `node --import tsx bench/loadgen.ts '<LoadConfig JSON>'`.
 */
import type net from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { Publisher, type PublishStats, publisherJwt } from "./publisher.ts";
import { ThreadPublisher } from "./publisher-thread.ts";
import { subscribe } from "./sse-client.ts";
import {
  type CpuShare,
  DeliveryLedger,
  Histogram,
  type LatencySummary,
  rssKB,
  startMeter,
} from "./stats.ts";

/** One publishing phase: flood (8 in flight, as fast as accepted) or a fixed rate. */
export interface PhaseConfig {
  name: string;
  /** Updates per second, or 0 to flood. */
  rate: number;
  /** Flood only: stop after this many updates. */
  maxEvents: number;
  /** Stop publishing after this long, ms. */
  durationMs: number;
  /** After publishing, wait this long at most for deliveries to finish, ms. */
  drainMs: number;
}

/** Everything a load run needs; sent as JSON from the runner. */
export interface LoadConfig {
  host: string;
  /** Where publishes go, and subscribers too unless `subscriberPorts` is set. */
  port: number;
  /** Ports (same host) the subscribers are spread over, round-robin: subscriber i on i mod n. */
  subscriberPorts?: number[];
  topic: string;
  /** HS256 key the hub verifies publisher JWTs with. */
  jwtKey: string;
  subscribers: number;
  /** Connection attempts outstanding at once; kept below the listen backlog (511 in Node). */
  connectWindow: number;
  /** Give up waiting for the remaining subscriptions after this long and go on, ms. */
  connectTimeoutMs: number;
  /** Publish requests in flight (one keep-alive connection each). */
  lanes: number;
  /** Publish from a worker thread instead of the subscribers' thread (publisher-thread.ts). */
  publisherThread?: boolean;
  /** Post each update's data as the raw body (nchan) instead of a Mercure form. */
  rawPublish?: boolean;
  phases: PhaseConfig[];
  /** Server pid: when set, its VmRSS is read before and after connecting. */
  serverPid?: number;
  /** Other processes of the server side by name (a second node, Redis): CPU reported apart. */
  peerPids?: Record<string, number>;
  /** Wait after all subscribers are live before measuring RSS / publishing, ms. */
  settleMs: number;
  /** The whole run is abandoned (exit 2) after this long, ms. */
  deadlineMs: number;
}

/** Outcome of one phase. */
export interface PhaseResult {
  name: string;
  publish: PublishStats;
  /** Accepted updates per second actually achieved. */
  publishPerSec: number;
  /** Deliveries expected: accepted × subscribers live at the start of the phase. */
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  reordered: number;
  /** Live subscribers that received fewer events than were accepted. */
  shortSubscribers: number;
  /** Subscriptions that ended during the phase (eviction, error). */
  closedDuringPhase: number;
  /** Deliveries per second, first publish to last delivery. */
  eventsPerSec: number;
  latencyMs: LatencySummary;
  /**
   * Publish answered (the publisher got its 200) → receive; a delivery that arrives before the
   * answer counts as 0. With pushback holding answers, this is the part of the latency left
   * after the hold; `publish.requestMs` shows the hold itself.
   */
  acceptedLatencyMs: LatencySummary;
  /**
   * The latency of each second of the phase (by when the event was received, from the first
   * publish): a flood starts cold (neither side's hot paths are optimised yet), so its p99 is
   * mostly made in its first seconds; this shows the cold start and the steady state apart.
   */
  latencyBySecondMs: LatencySummary[];
  /** The latency of events received from the phase's third second on (its steady state). */
  latencyAfter2sMs: LatencySummary;
  /**
   * How late the generator's own event loop ran (a 1 ms timer's delay): a read that arrives
   * while the generator is busy parsing others waits about this long, so it is the part of the
   * latency figures the generator adds, not the hub.
   */
  generatorLagMs: LatencySummary;
  /** CPU of generator, server and cores over the phase (publishing and drain). */
  cpu: CpuShare;
}

/** Outcome of a whole load run. */
export interface LoadResult {
  /** Subscriptions live / refused, and how fast they were all live (first bytes received). */
  connect: { live: number; failed: number; ms: number; perSec: number; cpu: CpuShare };
  rss?: { beforeKB: number; connectedKB: number; endKB: number; bytesPerConnection: number };
  phases: PhaseResult[];
  malformed: number;
  closeReasons: Record<string, number>;
}

/** Runs one load: connect all subscribers, run each phase, report. */
export async function runLoad(cfg: LoadConfig): Promise<LoadResult> {
  const n = cfg.subscribers;
  const ledger = new DeliveryLedger(n, cfg.lanes);
  const live = new Uint8Array(n);
  const sockets: net.Socket[] = [];
  const closeReasons: Record<string, number> = {};
  let latency = new Histogram();
  let accepted = new Histogram();
  // One histogram per second of the phase under way, and when the phase started (hrtime ns).
  let bySecond: Histogram[] = [];
  let phaseStartNs = 0;
  let publisher: Publisher | ThreadPublisher | undefined;
  let [liveCount, failed, closedCount, malformed, lastDelivery] = [0, 0, 0, 0, 0];
  let onSettled = (): void => {};
  const sink = {
    ready(sub: number): void {
      live[sub] = 1;
      liveCount++;
      onSettled();
    },
    event(sub: number, seq: number, sentNs: number, recvNs: number): void {
      ledger.record(sub, seq);
      const us = (recvNs - sentNs) / 1000;
      latency.record(us);
      const second = Math.max(0, Math.floor((recvNs - phaseStartNs) / 1e9));
      let h = bySecond[second];
      if (h === undefined) {
        h = new Histogram();
        bySecond[second] = h;
      }
      h.record(us);
      const answeredNs = publisher?.acceptedNs(seq) ?? 0;
      accepted.record(answeredNs === 0 ? 0 : (recvNs - answeredNs) / 1000);
      lastDelivery = recvNs;
    },
    malformed(): void {
      malformed++;
    },
    closed(sub: number, why: string): void {
      closeReasons[why] = (closeReasons[why] ?? 0) + 1;
      closedCount++;
      if (live[sub] === 1) liveCount--;
      else failed++;
      live[sub] = 0;
      onSettled();
    },
  };

  const rssBefore = cfg.serverPid ? rssKB(cfg.serverPid) : 0;
  // Connect with at most `connectWindow` attempts pending, so the listen backlog never
  // overflows (an overflow costs a 1 s SYN retransmit and would measure the kernel, not the hub).
  const path = `/.well-known/mercure?topic=${encodeURIComponent(cfg.topic)}`;
  const t0 = performance.now();
  const meter = startMeter(cfg.serverPid, cfg.peerPids);
  const ports = cfg.subscriberPorts?.length ? cfg.subscriberPorts : [cfg.port];
  const portOf = (sub: number): number => ports[sub % ports.length] ?? cfg.port;
  let opened = 0;
  await new Promise<void>((resolve) => {
    onSettled = (): void => {
      const settled = liveCount + failed;
      while (opened < n && opened - settled < cfg.connectWindow) {
        sockets.push(subscribe(opened, cfg.host, portOf(opened), path, sink));
        opened++;
      }
      if (settled >= n) resolve();
    };
    onSettled();
    setTimeout(resolve, cfg.connectTimeoutMs).unref();
  });
  onSettled = (): void => {};
  const connectMs = performance.now() - t0;
  const perSec = Math.round((liveCount / connectMs) * 1000);
  const connect = { live: liveCount, failed, ms: Math.round(connectMs), perSec, cpu: meter() };
  await sleep(cfg.settleMs);
  const rssConnected = cfg.serverPid ? rssKB(cfg.serverPid) : 0;

  const token = publisherJwt(cfg.jwtKey);
  if (cfg.publisherThread && cfg.rawPublish)
    throw new Error("--publisher-thread posts Mercure forms only");
  publisher = cfg.publisherThread
    ? new ThreadPublisher(cfg.host, cfg.port, cfg.topic, token, cfg.lanes)
    : new Publisher(
        cfg.host,
        cfg.port,
        cfg.topic,
        token,
        cfg.lanes,
        128,
        undefined,
        cfg.rawPublish,
      );
  const phases: PhaseResult[] = [];
  for (const ph of cfg.phases) {
    latency = new Histogram();
    accepted = new Histogram();
    const before = ledger.snapshot();
    const perSub = ledger.received.slice();
    const liveAtStart = liveCount;
    const closedAtStart = closedCount;
    const start = Number(process.hrtime.bigint());
    [bySecond, phaseStartNs] = [[], start];
    const phaseMeter = startMeter(cfg.serverPid, cfg.peerPids);
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lag.enable();
    const publish =
      ph.rate > 0
        ? await publisher.rate(ph.rate, ph.durationMs)
        : await publisher.flood(ph.maxEvents, ph.durationMs);
    const expected = publish.accepted * liveAtStart;
    // Drain: until everything expected arrived, nothing arrived for 2 s, or drainMs passed.
    const drainEnd = performance.now() + ph.drainMs;
    let seen = -1;
    let quietSince = performance.now();
    while (ledger.total - before.received < expected && performance.now() < drainEnd) {
      if (ledger.total !== seen) [seen, quietSince] = [ledger.total, performance.now()];
      else if (performance.now() - quietSince > 2000) break;
      await sleep(10);
    }
    lag.disable();
    const delivered = ledger.total - before.received;
    const duplicates = ledger.duplicates - before.duplicates;
    const span = Math.max(1, lastDelivery - start) / 1e9;
    phases.push({
      name: ph.name,
      publish,
      publishPerSec: Math.round((publish.accepted / Math.max(1, publish.ms)) * 1000 * 10) / 10,
      expected,
      delivered,
      lost: Math.max(0, expected - (delivered - duplicates)),
      duplicates,
      reordered: ledger.reordered - before.reordered,
      shortSubscribers: ledger.shortSubscribers(publish.accepted, perSub, (s) => live[s] === 1),
      closedDuringPhase: closedCount - closedAtStart,
      eventsPerSec: Math.round(delivered / span),
      latencyMs: latency.summary(),
      acceptedLatencyMs: accepted.summary(),
      latencyBySecondMs: Array.from(bySecond, (h) => (h ?? new Histogram()).summary()),
      latencyAfter2sMs: after(bySecond, 2).summary(),
      generatorLagMs: {
        count: lag.count,
        p50: Math.round(lag.percentile(50) / 1e4) / 100,
        p99: Math.round(lag.percentile(99) / 1e4) / 100,
        max: Math.round(lag.max / 1e4) / 100,
      },
      cpu: phaseMeter(),
    });
  }
  publisher.close();
  const rssEnd = cfg.serverPid ? rssKB(cfg.serverPid) : 0;
  for (const s of sockets) s.destroy();
  const result: LoadResult = { connect, phases, malformed, closeReasons };
  if (cfg.serverPid) {
    const per = liveCount > 0 ? ((rssConnected - rssBefore) * 1024) / liveCount : 0;
    result.rss = {
      beforeKB: rssBefore,
      connectedKB: rssConnected,
      endKB: rssEnd,
      bytesPerConnection: Math.round(per),
    };
  }
  return result;
}

/** The records of `bySecond` from second `from` on, in one histogram. */
function after(bySecond: Histogram[], from: number): Histogram {
  const all = new Histogram();
  for (const h of bySecond.slice(from)) if (h !== undefined) all.add(h);
  return all;
}

// Entry point when run as its own process: print the result as one JSON line, then exit even
// if a socket or timer is still open, so the run always stops by itself.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const cfg = JSON.parse(process.argv[2] ?? "{}") as LoadConfig;
  setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ error: `deadline ${cfg.deadlineMs} ms passed` })}\n`);
    process.exit(2);
  }, cfg.deadlineMs).unref();
  runLoad(cfg).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0)),
    (err: unknown) => {
      process.stdout.write(`${JSON.stringify({ error: String(err) })}\n`, () => process.exit(1));
    },
  );
}
