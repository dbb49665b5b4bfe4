/**
 * The `resume-storm` scenario: many clients of one hub on Redis lose their connections at once,
 * stay away a few seconds while publishing goes on, and all come back at once with their
 * `Last-Event-ID`. Reports how long until every client has caught up, what was lost, duplicated
 * or refused, what happened to the publishes meanwhile, `/healthz` latency and the hub's RSS.
 *
 *   fill history ─▶ connect N ─▶ publish at `rate` ─▶ drop all ─▶ offline ─▶ resume all ─▶ verify
 *
 * `npm run bench -- resume-storm [--clients N] [--offline-ms MS] [--compare path/to/cli.js]`:
 * the hub runs on core 0 with a fresh Redis key prefix (deleted afterwards), this load on core 1.
 * With `--compare`, rounds alternate between this tree's build and that one.
 *
 * Run directly with a JSON {@link StormConfig} as argv[2], this file is the load side.
 */
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { Redis } from "ioredis";
import { keyBase } from "../src/history/redis-keys.ts";
import { type EndKind, IdClient } from "./id-client.ts";
import { postUpdate, publisherJwt } from "./publisher.ts";
import { Histogram, rssKB } from "./stats.ts";

/** What the load side needs. */
export interface StormConfig {
  port: number;
  pid: number;
  jwtKey: string;
  redisUrl: string;
  prefix: string;
  clients: number;
  /** Updates published before the clients connect (the history a resume reads from). */
  fill: number;
  /** Bytes of each update's data. */
  dataBytes: number;
  /** Publishes per second during the run (one at a time, so sequence order is stream order). */
  rate: number;
  offlineMs: number;
  /** TCP connection attempts outstanding at once (below the listen backlog, 511 in Node). */
  connectWindow: number;
  /** Give up on the clients catching up after this long, ms. */
  catchUpMs: number;
}

const TOPIC = "https://bench.example/resume";
const PATH = `/.well-known/mercure?topic=${encodeURIComponent(TOPIC)}`;

/** Where and what a {@link SteadyPublisher} publishes. */
export interface SteadyOptions {
  port: number;
  topic: string;
  /** Publishes per second. */
  rate: number;
  /** Bytes of each update's data, `<seq>:` and padding. */
  dataBytes: number;
}

/**
 * One publisher connection sending numbered updates at a fixed rate until stopped, one at a time
 * (so the order of sequence numbers is the stream's order).
 */
export class SteadyPublisher {
  accepted = 0;
  failed = 0;
  readonly failures: Record<string, number> = {};
  lastAccepted = -1;
  readonly rtt = new Histogram();
  /** When set, also records the round trips of this window (the storm). */
  window: Histogram | undefined;
  #stopped = false;
  #agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  constructor(
    readonly cfg: SteadyOptions,
    readonly token: string,
  ) {}

  async run(firstSeq: number): Promise<void> {
    const period = 1000 / this.cfg.rate;
    const t0 = performance.now();
    for (let i = 0; !this.#stopped; i++) {
      const wait = t0 + i * period - performance.now();
      if (wait > 0) await sleep(wait);
      await this.send(firstSeq + i);
    }
    this.#agent.destroy();
  }

  stop(): void {
    this.#stopped = true;
  }

  send(seq: number, agent: http.Agent = this.#agent): Promise<void> {
    const head = `${seq}:`;
    const data = head + "x".repeat(Math.max(0, this.cfg.dataBytes - head.length));
    const body = `topic=${encodeURIComponent(this.cfg.topic)}&data=${encodeURIComponent(data)}`;
    const t0 = performance.now();
    return postUpdate(agent, "127.0.0.1", this.cfg.port, this.token, body).then((why) => {
      this.rtt.record((performance.now() - t0) * 1000);
      this.window?.record((performance.now() - t0) * 1000);
      if (why === null) {
        this.accepted++;
        this.lastAccepted = Math.max(this.lastAccepted, seq);
      } else {
        this.failed++;
        this.failures[why] = (this.failures[why] ?? 0) + 1;
      }
    });
  }
}

/** Connects `clients` with at most `window` TCP connects outstanding; resolves when all are sent. */
async function connectAll(clients: IdClient[], window: number, resume: boolean): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < clients.length) {
      const socket = (clients[next++] as IdClient).connect(resume);
      await new Promise<void>((resolve) => {
        socket.once("connect", () => resolve());
        socket.once("close", () => resolve());
      });
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
}

/** The stream's sequence numbers in stream order (fill entries left out). */
async function streamSeqs(cfg: StormConfig): Promise<number[]> {
  const redis = new Redis(cfg.redisUrl, { maxRetriesPerRequest: 1 });
  try {
    const seqs: number[] = [];
    let from = "-";
    for (;;) {
      const page = await redis.xrange(`${keyBase(cfg.prefix)}stream`, from, "+", "COUNT", 5000);
      for (const [, fields] of page) {
        const payload = JSON.parse(fields[fields.indexOf("u") + 1] as string) as { d: string };
        const seq = Number.parseInt(payload.d, 10);
        if (Number.isInteger(seq)) seqs.push(seq);
      }
      if (page.length < 5000) return seqs;
      from = `(${(page.at(-1) as [string, string[]])[0]}`;
    }
  } finally {
    redis.disconnect();
  }
}

/** The load side: see the module comment. Prints one JSON line. */
export async function stormLoad(cfg: StormConfig): Promise<Record<string, unknown>> {
  const token = publisherJwt(cfg.jwtKey);
  const publisher = new SteadyPublisher({ ...cfg, topic: TOPIC }, token);
  // The history: `fill` updates that no client receives live (data without a sequence number).
  const fillAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let filled = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (filled < cfg.fill) {
        filled++;
        await publisher.send(-1, fillAgent);
      }
    }),
  );
  fillAgent.destroy();
  const fillFailed = publisher.failed;
  publisher.accepted = 0;
  publisher.failed = 0;

  const clients = Array.from({ length: cfg.clients }, () => new IdClient(cfg.port, PATH));
  const ends: Record<EndKind, number> = { "no-response": 0, status: 0, "after-response": 0 };
  const statuses: Record<string, number> = {};
  let storming = false;
  for (const client of clients) {
    client.onHead = (status) => {
      if (status !== 200) statuses[status] = (statuses[status] ?? 0) + 1;
    };
    // During the storm a client whose connection ends comes back after a second, as an
    // EventSource would, resuming from its last id.
    client.onEnd = (kind) => {
      if (!storming) return;
      ends[kind]++;
      setTimeout(() => client.connect(true), 1000).unref();
    };
  }
  const connectStart = performance.now();
  await connectAll(clients, cfg.connectWindow, false);
  const openBy = performance.now() + 30_000;
  while (clients.some((c) => !c.open) && performance.now() < openBy) await sleep(50);
  const connectMs = Math.round(performance.now() - connectStart);
  const connected = clients.filter((c) => c.open).length;

  const publishing = publisher.run(0);
  await sleep(2000);
  const rssBeforeKB = rssKB(cfg.pid);
  const seqAtDrop = publisher.lastAccepted;
  for (const client of clients) client.drop();
  await sleep(cfg.offlineMs);

  // The storm: every client resumes at once; measured until each has the update that was the
  // newest when they came back.
  const target = publisher.lastAccepted;
  const before = { accepted: publisher.accepted, failed: publisher.failed };
  const stormRtt = new Histogram();
  publisher.window = stormRtt;
  let peakKB = rssBeforeKB;
  const health = new Histogram();
  let healthFailed = 0;
  storming = true;
  const t0 = performance.now();
  const sampler = setInterval(() => {
    peakKB = Math.max(peakKB, rssKB(cfg.pid));
    const h0 = performance.now();
    fetch(`http://127.0.0.1:${cfg.port}/healthz`, { signal: AbortSignal.timeout(10_000) }).then(
      (res) => {
        health.record((performance.now() - h0) * 1000);
        if (res.status !== 200) healthFailed++;
        return res.arrayBuffer();
      },
      () => {
        healthFailed++;
      },
    );
  }, 100);
  await connectAll(clients, cfg.connectWindow, true);
  const reconnectMs = Math.round(performance.now() - t0);
  const deadline = t0 + cfg.catchUpMs;
  while (clients.some((c) => c.lastSeq < target) && performance.now() < deadline) await sleep(20);
  const caughtUpMs = Math.round(performance.now() - t0);
  const caughtUp = clients.filter((c) => c.lastSeq >= target).length;
  const stormPublish = {
    accepted: publisher.accepted - before.accepted,
    failed: publisher.failed - before.failed,
    failures: { ...publisher.failures },
    p99Ms: stormRtt.summary().p99,
    maxMs: stormRtt.summary().max,
  };
  storming = false;
  publisher.window = undefined;
  clearInterval(sampler);
  const rssAfterKB = rssKB(cfg.pid);

  // Verify against the stream: each client must hold one unbroken run up to the last update.
  await sleep(1000);
  publisher.stop();
  await publishing;
  const last = publisher.lastAccepted;
  const drainBy = performance.now() + 15_000;
  while (clients.some((c) => c.lastSeq < last) && performance.now() < drainBy) await sleep(50);
  const seqs = await streamSeqs(cfg);
  const index = new Map(seqs.map((seq, i) => [seq, i]));
  let lost = 0;
  let short = 0;
  for (const client of clients) {
    const first = index.get(client.firstSeq);
    const end = index.get(seqs.at(-1) as number) as number;
    if (first === undefined) {
      lost += seqs.length;
      short++;
      continue;
    }
    const missing = end - first + 1 - client.received;
    if (missing > 0) {
      lost += missing;
      short++;
    }
  }
  for (const client of clients) client.drop();
  return {
    clients: cfg.clients,
    connected,
    connectMs,
    fill: cfg.fill,
    fillFailed,
    dataBytes: cfg.dataBytes,
    rate: cfg.rate,
    offlineMs: cfg.offlineMs,
    resumeAllMs: caughtUpMs,
    reconnectMs,
    caughtUp,
    missedPerClient: target - seqAtDrop,
    lost,
    clientsShort: short,
    outOfOrder: clients.reduce((n, c) => n + c.outOfOrder, 0),
    droppedWithoutResponse: ends["no-response"],
    endedAfterResponse: ends["after-response"],
    non200: statuses,
    stormPublish,
    publishTotal: { accepted: publisher.accepted, failed: publisher.failed },
    healthz: { ...health.summary(), failed: healthFailed },
    rssMB: {
      before: Math.round(rssBeforeKB / 1024),
      peak: Math.round(peakKB / 1024),
      after: Math.round(rssAfterKB / 1024),
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href && process.argv[2]) {
  const cfg = JSON.parse(process.argv[2]) as StormConfig;
  const guard = setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ error: "deadline passed" })}\n`);
    process.exit(2);
  }, 180_000);
  guard.unref();
  stormLoad(cfg).then(
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
