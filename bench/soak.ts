/**
 * The `soak` scenario's load: `subscribers` SSE clients of one in-memory hub, of which `churn`
 * per second disconnect and as many connect again (resuming from their last id), while updates
 * are published at a steady rate, for `minutes`. The hub runs with `bench/soak-probe.mjs`: every
 * `sampleSec` (and at the start and the end) the probe forces a GC and reports heap used, RSS,
 * open file descriptors and the event-loop delay p99 since the previous sample. Stops by itself.
 *
 *   connect N ─▶ churn ─▶ pause, all N open: "start" ─▶ churn + publish, sample every 30 s ─▶
 *   pause, all N open again: "end"      (heap, RSS and FDs compare at the same N open)
 *
 * Run with a JSON {@link SoakConfig} as argv[2]; prints one JSON line.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { IdClient } from "./id-client.ts";
import { publisherJwt } from "./publisher.ts";
import { SteadyPublisher } from "./resume-storm.ts";

/** What the soak's load needs. */
export interface SoakConfig {
  port: number;
  pid: number;
  jwtKey: string;
  subscribers: number;
  /** Disconnects (and as many connects) per second. */
  churn: number;
  /** Publishes per second, one at a time. */
  rate: number;
  dataBytes: number;
  minutes: number;
  /** Seconds between probes. */
  sampleSec: number;
  /** Seconds of churn and publishing before the "start" sample. */
  warmupSec: number;
  connectWindow: number;
}

const TOPIC = "https://bench.example/soak";
const PATH = `/.well-known/mercure?topic=${encodeURIComponent(TOPIC)}`;

/** Asks the hub's probe for a sample and waits for its answer (at most 10 s). */
async function probe(pid: number): Promise<Record<string, unknown>> {
  const file = `/tmp/crier-soak-probe-${pid}.json`;
  rmSync(file, { force: true });
  process.kill(pid, "SIGUSR2");
  const by = performance.now() + 10_000;
  while (performance.now() < by) {
    await sleep(50);
    if (!existsSync(file)) continue;
    try {
      return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch {
      // written but not complete yet
    }
  }
  return { error: "the probe did not answer" };
}

export async function soakLoad(cfg: SoakConfig): Promise<Record<string, unknown>> {
  const clients = Array.from({ length: cfg.subscribers }, () => new IdClient(cfg.port, PATH));
  const ends = { "no-response": 0, status: 0, "after-response": 0 };
  const errors: Record<string, number> = {};
  for (const client of clients) {
    // A connection that ends by itself (not dropped by the churn) is counted, with its error;
    // the churn or the next refill connects it again.
    client.onEnd = (kind, error) => {
      ends[kind]++;
      if (error !== undefined) errors[error] = (errors[error] ?? 0) + 1;
    };
  }
  // Connects every client that has no connection and waits (at most 60 s) until all are open,
  // so the start and end samples see the same population.
  const refill = async (): Promise<number> => {
    const t0 = performance.now();
    for (const client of idle()) client.connect(true);
    while (clients.some((c) => !c.open) && performance.now() - t0 < 60_000) {
      await sleep(100);
      for (const client of idle()) client.connect(true);
    }
    return Math.round(performance.now() - t0);
  };
  const idle = (): IdClient[] => clients.filter((c) => !c.connected);
  const opened = performance.now();
  for (let i = 0; i < clients.length; i += cfg.connectWindow) {
    const batch = clients.slice(i, i + cfg.connectWindow).map((c) => c.connect(false));
    await Promise.all(
      batch.map((s) => new Promise((resolve) => s.once("connect", resolve).once("close", resolve))),
    );
  }
  while (clients.some((c) => !c.open) && performance.now() - opened < 60_000) await sleep(50);
  const connectMs = Math.round(performance.now() - opened);
  const live = clients.filter((c) => c.open).length;

  const publisher = new SteadyPublisher(
    { port: cfg.port, rate: cfg.rate, dataBytes: cfg.dataBytes, topic: TOPIC },
    publisherJwt(cfg.jwtKey),
  );
  const publishing = publisher.run(0);
  // Churn in tenths of a second: drop `churn / 10` open clients, connect as many idle ones.
  let cycles = 0;
  const step = Math.max(1, Math.round(cfg.churn / 10));
  let churn: NodeJS.Timeout | undefined;
  const startChurn = () => {
    churn = setInterval(churnStep, 100);
  };
  const churnStep = () => {
    const connected = clients.filter((c) => c.open);
    for (let i = 0; i < step && connected.length > 0; i++) {
      const at = Math.floor(Math.random() * connected.length);
      (connected[at] as IdClient).drop();
      connected[at] = connected[connected.length - 1] as IdClient;
      connected.pop();
    }
    for (const client of idle().slice(0, step)) client.connect(true);
    cycles += step;
  };

  const samples: Record<string, unknown>[] = [];
  const sample = async (label: string) => {
    samples.push({
      label,
      sec: Math.round((performance.now() - opened) / 1000),
      connected: clients.filter((c) => c.open).length,
      ...(await probe(cfg.pid)),
    });
  };
  // Start: after a warm-up of churn (its sample gives the loop delay under churn), the churn
  // pauses until every client is open again, and the probe samples the full population.
  startChurn();
  await sleep(cfg.warmupSec * 1000);
  await sample("churning");
  clearInterval(churn);
  const refillStartMs = await refill();
  await sample("start");
  startChurn();
  const end = performance.now() + cfg.minutes * 60_000;
  while (performance.now() + cfg.sampleSec * 1000 < end) {
    await sleep(cfg.sampleSec * 1000);
    await sample("churning");
  }
  await sleep(Math.max(0, end - performance.now()));
  await sample("churning");
  clearInterval(churn);
  const refillEndMs = await refill();
  await sample("end");
  publisher.stop();
  await publishing;
  for (const client of clients) client.drop();
  const start = samples.find((s) => s.label === "start") ?? {};
  const last = samples.at(-1) ?? {};
  const delta = (key: string) => Number(last[key]) - Number(start[key]);
  return {
    subscribers: cfg.subscribers,
    live,
    connectMs,
    churnPerSec: cfg.churn,
    churned: cycles,
    minutes: cfg.minutes,
    rate: cfg.rate,
    published: publisher.accepted,
    publishFailed: publisher.failed,
    publishFailures: publisher.failures,
    publishP99Ms: publisher.rtt.summary().p99,
    received: clients.reduce((n, c) => n + c.received, 0),
    outOfOrder: clients.reduce((n, c) => n + c.outOfOrder, 0),
    endedByThemselves: ends,
    errors,
    refillMs: { start: refillStartMs, end: refillEndMs },
    growth: {
      fds: delta("fds"),
      heapUsedAfterGcMB: Math.round(delta("heapUsedAfterGcMB") * 10) / 10,
      rssMB: Math.round(delta("rssMB") * 10) / 10,
    },
    samples,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href && process.argv[2]) {
  const cfg = JSON.parse(process.argv[2]) as SoakConfig;
  const guard = setTimeout(
    () => {
      process.stdout.write(`${JSON.stringify({ error: "deadline passed" })}\n`);
      process.exit(2);
    },
    (cfg.minutes * 60 + cfg.warmupSec + 180) * 1000,
  );
  guard.unref();
  soakLoad(cfg).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stdout.write(`${JSON.stringify({ error: String(err) })}\n`);
      process.exit(1);
    },
  );
}
