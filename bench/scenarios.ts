/**
 * The benchmark scenarios and how one is run: rounds alternate the scenario's servers (the
 * baseline and crier unless it says otherwise; fresh server each time, same generator settings),
 * each figure is the median over rounds, and the ratio is crier ÷ baseline.
 */

import { setTimeout as sleep } from "node:timers/promises";
import { startOnCluster, startOnRedis } from "./engines.ts";
import type { LoadConfig, LoadResult, PhaseConfig, PhaseResult } from "./loadgen.ts";
import { startNatsNodes } from "./nats-node.ts";
import { startNchan } from "./nchan.ts";
import {
  JWT_KEY,
  type Running,
  runLoadgen,
  type ServerName,
  scrapePushback,
  startServer,
} from "./servers.ts";
import { type CpuShare, coreBusyPct, coreTicks, DISTURBED_PCT } from "./stats.ts";
import { startTwoNodes } from "./two-nodes.ts";

/** Figures a scenario extracts from one load result. */
export type Metrics = Record<string, number>;

/** A named load shape plus the figures it reports. */
export interface Scenario {
  name: string;
  /** Rounds of (baseline, crier); more rounds give a steadier median. */
  rounds: number;
  /** Servers each round runs, in this order. Default {@link DEFAULT_SERVERS}. */
  servers?: ServerName[];
  subscribers: number;
  phases: PhaseConfig[];
  /** Publish requests in flight (one keep-alive connection each). Default 8. */
  lanes?: number;
  /**
   * Start crier with `--metrics` and report its overflow evictions and the publishes it held or
   * refused (`overflowEvictions`, `publishesHeld`, `publishesRefused`), read after the load.
   */
  scrape?: boolean;
  /** Run only when named (`npm run bench -- NAME`), never in a full run. */
  namedOnly?: boolean;
  /** Pause after the last subscription is live (before RSS is read / publishing starts), ms. */
  settleMs: number;
  metrics(r: LoadResult): Metrics;
}

/** The servers a scenario compares unless it names others. */
export const DEFAULT_SERVERS: ServerName[] = ["baseline", "crier"];

const flood = (maxEvents: number): PhaseConfig => ({
  name: "flood",
  rate: 0,
  maxEvents,
  durationMs: 5000,
  drainMs: 15_000,
});
const steady = (rate: number): PhaseConfig => ({
  name: `rate${rate}`,
  rate,
  maxEvents: 0,
  durationMs: 15_000,
  drainMs: 5000,
});

/** Who used the CPU: a figure is only as good as the generator's headroom and the quiet. */
function cpuMetrics(c: CpuShare, prefix = ""): Metrics {
  return {
    [`${prefix}serverCpuPct`]: c.serverCpuPct,
    [`${prefix}generatorCpuPct`]: c.generatorCpuPct,
    [`${prefix}core0BusyPct`]: c.coreBusyPct[0] ?? 0,
    [`${prefix}core1BusyPct`]: c.coreBusyPct[1] ?? 0,
    [`${prefix}foreignCpuPct`]: c.foreignCpuPct,
    // Other processes of the server side (two nodes: `node2CpuPct`, `redisCpuPct`).
    ...Object.fromEntries(
      Object.entries(c.peerCpuPct ?? {}).map(([name, pct]) => [`${prefix}${name}CpuPct`, pct]),
    ),
  };
}

/** The figures of a publishing phase, prefixed (e.g. `rate20.p99Ms`) when there are several. */
function phaseMetrics(p: PhaseResult | undefined, prefix = ""): Metrics {
  if (!p) return {};
  return {
    [`${prefix}eventsPerSec`]: p.eventsPerSec,
    [`${prefix}publishPerSec`]: p.publishPerSec,
    [`${prefix}published`]: p.publish.accepted,
    [`${prefix}publishFailed`]: p.publish.failed,
    [`${prefix}missedSlots`]: p.publish.missedSlots,
    [`${prefix}publishP99Ms`]: p.publish.requestMs.p99,
    [`${prefix}acceptedP50Ms`]: p.acceptedLatencyMs.p50,
    [`${prefix}acceptedP99Ms`]: p.acceptedLatencyMs.p99,
    [`${prefix}p50Ms`]: p.latencyMs.p50,
    [`${prefix}p99Ms`]: p.latencyMs.p99,
    [`${prefix}maxMs`]: p.latencyMs.max,
    // The first second of the phase (cold) and the rest from its third second (steady).
    [`${prefix}firstSecondP99Ms`]: p.latencyBySecondMs[0]?.p99 ?? 0,
    [`${prefix}after2sP99Ms`]: p.latencyAfter2sMs.p99,
    [`${prefix}generatorLagP99Ms`]: p.generatorLagMs.p99,
    [`${prefix}lost`]: p.lost,
    [`${prefix}duplicates`]: p.duplicates,
    [`${prefix}reordered`]: p.reordered,
    [`${prefix}closed`]: p.closedDuringPhase,
    // The server's CPU time per delivered event: its cost, which holds up better than a rate
    // when someone else's load takes the server's core for part of the run.
    [`${prefix}serverUsPerEvent`]:
      p.delivered > 0
        ? Math.round(((p.cpu.serverCpuPct * p.cpu.ms * 10) / p.delivered) * 100) / 100
        : 0,
    ...cpuMetrics(p.cpu, prefix),
  };
}

const steadyTenK = (name: string): Scenario => ({
  name,
  rounds: 2,
  subscribers: 10_000,
  phases: [steady(20), steady(2)],
  settleMs: 500,
  metrics: (r) => ({
    ...phaseMetrics(r.phases[0], "rate20."),
    ...phaseMetrics(r.phases[1], "rate2."),
  }),
});

const fanout = (name: string, subscribers: number, maxEvents: number): Scenario => ({
  name,
  rounds: 3,
  subscribers,
  phases: [flood(maxEvents)],
  settleMs: 500,
  metrics: (r) => ({
    ...phaseMetrics(r.phases[0]),
    serverRssEndMB: Math.round((r.rss?.endKB ?? 0) / 1024),
  }),
});

/** All scenarios, in the order `npm run bench` runs them. */
export const SCENARIOS: Scenario[] = [
  {
    name: "connect",
    rounds: 3,
    subscribers: 10_000,
    phases: [],
    settleMs: 0,
    metrics: (r) => ({
      connPerSec: r.connect.perSec,
      connectMs: r.connect.ms,
      live: r.connect.live,
      failed: r.connect.failed,
      ...cpuMetrics(r.connect.cpu),
    }),
  },
  fanout("fanout-1k", 1000, 20_000),
  fanout("fanout-10k", 10_000, 2000),
  steadyTenK("steady-10k"),
  // steady-10k against nchan (nginx, one worker on the server core), alternated; `nchanRatio` is
  // crier ÷ nchan. Named only: needs Debian's libnginx-mod-nchan.
  { ...steadyTenK("steady-10k-nchan"), servers: ["nchan", "crier"], namedOnly: true },
  {
    name: "idle-10k",
    rounds: 3,
    subscribers: 10_000,
    phases: [],
    settleMs: 3000,
    metrics: (r) => ({
      rssBytesPerConnection: r.rss?.bytesPerConnection ?? 0,
      rssBeforeMB: Math.round((r.rss?.beforeKB ?? 0) / 102.4) / 10,
      rssConnectedMB: Math.round((r.rss?.connectedKB ?? 0) / 102.4) / 10,
      live: r.connect.live,
    }),
  },
  // What watching the hub costs the fan-out: crier alone against crier with its metrics scraped
  // once a second, and against crier with one dashboard open; alternated in each round.
  { ...fanout("fanout-1k-metrics", 1000, 20_000), servers: ["crier", "crier-metrics"] },
  { ...fanout("fanout-1k-dashboard", 1000, 20_000), servers: ["crier", "crier-dashboard"] },
  // Overload: a flood from 64 publishers in flight (8× the fanout scenarios), against crier with
  // pushback (the default) and with `--pushback=off`, alternated; `pushbackRatio` is on ÷ off.
  {
    ...fanout("flood-1k", 1000, 40_000),
    lanes: 64,
    scrape: true,
    servers: ["crier-nopushback", "crier"],
  },
  {
    ...fanout("flood-10k", 10_000, 4000),
    lanes: 64,
    scrape: true,
    servers: ["crier-nopushback", "crier"],
  },
  // The same for a minute at 10,000 subscribers: does the flood end with evictions?
  {
    ...fanout("flood-10k-60s", 10_000, 1_000_000),
    rounds: 1,
    phases: [{ ...flood(1_000_000), durationMs: 60_000 }],
    lanes: 64,
    scrape: true,
    servers: ["crier-nopushback", "crier"],
  },
  // The flush window: crier against itself with `--flush-window 0` (a flush every event-loop
  // turn), alternated; `windowRatio` is window ÷ none. And crier now against crier before
  // overload was designed for (`crier-before`: no pushback, no window); `beforeRatio`.
  { ...fanout("fanout-1k-window", 1000, 20_000), servers: ["crier-nowindow", "crier"] },
  { ...fanout("fanout-10k-window", 10_000, 2000), servers: ["crier-nowindow", "crier"] },
  // fanout-1k after a 2-second flood that is not measured (V8 has optimised the hot paths of
  // both sides by then): the steady state of the flood; `warmupP99Ms` is the first 2 s's p99.
  {
    ...fanout("fanout-1k-warm", 1000, 20_000),
    phases: [{ ...flood(20_000), name: "warmup", durationMs: 2000 }, flood(20_000)],
    metrics: (r) => ({
      ...phaseMetrics(r.phases[1]),
      warmupP99Ms: r.phases[0]?.latencyMs.p99 ?? 0,
      warmupEventsPerSec: r.phases[0]?.eventsPerSec ?? 0,
    }),
  },
  // The floor: a broadcaster with no features (synthetic.ts) that joins what was published and
  // writes it to every subscriber every 5 ms (`synthetic`) or every event-loop turn
  // (`synthetic-turn`), against crier; `floorRatio` is crier ÷ synthetic.
  {
    ...fanout("fanout-1k-floor", 1000, 20_000),
    servers: ["synthetic", "synthetic-turn", "crier"],
  },
  {
    ...fanout("fanout-10k-floor", 10_000, 2000),
    servers: ["synthetic", "synthetic-turn", "crier"],
  },
  {
    ...fanout("flood-1k-before", 1000, 40_000),
    lanes: 64,
    scrape: true,
    servers: ["crier-before", "crier"],
  },
  {
    ...fanout("flood-10k-before", 10_000, 4000),
    lanes: 64,
    scrape: true,
    servers: ["crier-before", "crier"],
  },
  {
    name: "steady-10k-before",
    rounds: 2,
    subscribers: 10_000,
    phases: [steady(2)],
    settleMs: 500,
    servers: ["crier-before", "crier"],
    metrics: (r) => phaseMetrics(r.phases[0]),
  },
  // Scale out on Redis: publishers on node A, subscribers half on A and half on B, both nodes on
  // the server core; compared with single-node crier (in memory) and the baseline.
  { ...fanout("fanout-2node", 1000, 20_000), servers: ["baseline", "crier", "crier-2node"] },
  // The history in a file (both sync policies) against the history in memory, alternated.
  {
    ...fanout("fanout-1k-file", 1000, 20_000),
    servers: ["crier", "crier-file", "crier-file-always"],
  },
  // One node in memory, one and two nodes on NATS JetStream, alternated round by round.
  {
    ...fanout("fanout-nats", 1000, 20_000),
    servers: ["crier", "crier-nats", "crier-nats-2node"],
  },
  // The quicker half of the next one: one node in memory and one on Redis, alternated.
  { ...fanout("fanout-redis", 1000, 20_000), servers: ["crier", "crier-redis"] },
  // What an engine costs: one node in memory, on one Redis, on a Redis Cluster and on NATS
  // JetStream, alternated round by round.
  {
    ...fanout("fanout-engines", 1000, 20_000),
    servers: ["crier", "crier-redis", "crier-cluster", "crier-nats"],
  },
  // The same with 64 publishes in flight instead of 8: with few publishers in flight, the
  // engine's round trip per publish bounds how many updates each write can carry.
  {
    ...fanout("fanout-engines-64", 1000, 40_000),
    lanes: 64,
    servers: ["crier", "crier-redis", "crier-nats"],
  },
];

/** `--smoke`: tiny sizes, correctness only; finishes in seconds. */
export const SMOKE: Scenario = { ...fanout("smoke", 20, 200), rounds: 1 };

/** One server's run: the figures, or why it failed. */
export interface RunRecord {
  server: ServerName;
  round: number;
  metrics?: Metrics;
  result?: LoadResult;
  error?: string;
  /** Busy % of each core just before the run, after waiting up to 5 s for it to drop. */
  busyBeforePct?: number[];
}

/**
 * The machine is shared: before each run, wait (at most `maxMs`) until no core is more than
 * 25% busy, so a run starts quiet when it can; returns the last reading either way.
 */
async function waitForQuiet(maxMs: number): Promise<number[]> {
  const end = performance.now() + maxMs;
  for (;;) {
    const t = coreTicks();
    await sleep(500);
    const busy = coreBusyPct(t);
    if (Math.max(...busy) <= 25 || performance.now() >= end) return busy;
  }
}

/** Starts `server`, runs the scenario's load against it, stops it (always). */
export async function runOnce(
  sc: Scenario,
  server: ServerName,
  round: number,
  history?: number,
  options: { readonly publisherThread?: boolean } = {},
) {
  const record: RunRecord = { server, round };
  let running: Running | undefined;
  const start = (): Promise<Running> =>
    server === "crier-2node"
      ? startTwoNodes()
      : server === "crier-nats" || server === "crier-nats-2node"
        ? startNatsNodes(server === "crier-nats" ? 1 : 2, history)
        : server === "crier-redis"
          ? startOnRedis()
          : server === "crier-cluster"
            ? startOnCluster()
            : server === "nchan"
              ? startNchan()
              : startServer(
                  server,
                  history,
                  sc.scrape && server !== "baseline" ? ["--metrics"] : [],
                );
  try {
    record.busyBeforePct = await waitForQuiet(5000);
    // One retry: on a shared checkout a start can fail for a passing reason (a file mid-save).
    running = await start().catch(async () => {
      await sleep(2000);
      return start();
    });
    const phasesMs = sc.phases.reduce((t, p) => t + p.durationMs + p.drainMs, 0);
    const cfg: LoadConfig = {
      host: "127.0.0.1",
      port: running.port,
      topic: "https://bench.example/updates",
      jwtKey: JWT_KEY,
      subscribers: sc.subscribers,
      connectWindow: 500,
      connectTimeoutMs: 30_000,
      lanes: sc.lanes ?? 8,
      publisherThread: options.publisherThread === true,
      rawPublish: server === "nchan",
      phases: sc.phases,
      serverPid: running.pid,
      settleMs: sc.settleMs,
      deadlineMs: 30_000 + sc.settleMs + phasesMs + 15_000,
    };
    if (running.subscriberPorts) cfg.subscriberPorts = running.subscriberPorts;
    if (running.peerPids) cfg.peerPids = running.peerPids;
    record.result = await runLoadgen(cfg);
    record.metrics = sc.metrics(record.result);
    if (sc.scrape) Object.assign(record.metrics, await scrapePushback(running.port));
  } catch (err) {
    record.error = err instanceof Error ? err.message : String(err);
  } finally {
    if (running) await running.stop();
  }
  return record;
}

/** Whether someone else's load took more than {@link DISTURBED_PCT} of a core during the run. */
export function disturbed(run: RunRecord): boolean {
  const foreign = Object.entries(run.metrics ?? {}).filter(([k]) => k.endsWith("foreignCpuPct"));
  return foreign.some(([, v]) => v > DISTURBED_PCT);
}

/**
 * Median of each figure over the runs of one server, leaving out disturbed runs when at least
 * one undisturbed run exists (they stay in the output, marked).
 */
export function medians(all: RunRecord[]): Metrics {
  const quiet = all.filter((r) => !disturbed(r));
  const runs = quiet.length > 0 ? quiet : all;
  const out: Metrics = {};
  const keys = new Set(runs.flatMap((r) => Object.keys(r.metrics ?? {})));
  for (const k of keys) {
    const v = runs.map((r) => r.metrics?.[k]).filter((x): x is number => x !== undefined);
    v.sort((a, b) => a - b);
    const mid = Math.floor(v.length / 2);
    const m = v.length % 2 ? (v[mid] ?? 0) : ((v[mid - 1] ?? 0) + (v[mid] ?? 0)) / 2;
    out[k] = Math.round(m * 100) / 100;
  }
  return out;
}
