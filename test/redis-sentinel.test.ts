import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, describe, test } from "node:test";
import { promisify } from "node:util";
import { until } from "./helpers.ts";
import {
  type HubProcess,
  hasRedisServer,
  publish,
  SseClient,
  startHub,
  startRedis,
  stopAllHubs,
  streamIds,
  uniquePrefix,
} from "./redis-harness.ts";

const run = promisify(execFile);
const skip = hasRedisServer()
  ? undefined
  : "redis-sentinel: needs redis-server, redis-sentinel and redis-cli (apt-get install redis-server redis-sentinel)";
if (skip !== undefined && process.env.CI === "true") throw new Error(skip);

const cli = async (port: number, ...args: string[]) =>
  (await run("redis-cli", ["-p", String(port), ...args])).stdout.trim();

/** A Sentinel on a free port watching `primary` as "crier"; resolves once it knows a replica. */
async function startSentinel(
  dir: string,
  primary: number,
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const conf = join(dir, `sentinel-${port}.conf`);
    // Sentinel rewrites its file as it learns, so each gets its own.
    writeFileSync(
      conf,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        `sentinel monitor crier 127.0.0.1 ${primary} 1`,
        "sentinel down-after-milliseconds crier 1000",
        "sentinel failover-timeout crier 10000",
        "",
      ].join("\n"),
    );
    const child = spawn("redis-sentinel", [conf], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    const ready = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-sentinel did not start: ${out}`)),
        5000,
      );
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
        if (out.includes("+monitor master")) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) return { child, port };
    if (attempt >= 10) throw new Error(`redis-sentinel did not start: ${out}`);
  }
}

// A subscriber that comes back (with its last id) whenever its node ends its stream, and notes
// where each connection started and what the node said of its id.
function follower(hub: HubProcess) {
  const client = new SseClient("ticks");
  const resumes: { at: number; from: string | null }[] = [];
  let closed = false;
  const loop = (async () => {
    await client.connect(hub.url);
    for (;;) {
      await client.ended();
      if (closed) return;
      for (let attempt = 0; ; attempt++) {
        try {
          const at = client.ids.length;
          await client.connect(hub.url);
          resumes.push({ at, from: client.resumedFrom });
          break;
        } catch (err) {
          if (attempt > 100) throw err;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  })();
  return {
    client,
    resumes,
    async stop() {
      closed = true;
      client.close();
      await loop.catch(() => {});
    },
  };
}

/**
 * A primary, `replicas` replicas and one Sentinel, all on free ports in `dir`; two hub nodes
 * on them with `args`, two followers each; a publish every 20 ms alternating between the
 * nodes, `SENTINEL FAILOVER` after the 40th, until 40 more were acknowledged. Returns what the
 * publishers were told, the new primary's stream and the followers.
 */
async function failover(replicas: number, args: string[], dir: string, servers: ChildProcess[]) {
  // In `dir`: a replica's sync writes an RDB file to the working directory.
  const primary = await startRedis(undefined, () => ["--dir", dir]);
  servers.push(primary.child);
  const replicaPorts: number[] = [];
  for (let i = 0; i < replicas; i++) {
    const r = await startRedis(undefined, () => [
      ...["--dir", dir, "--replicaof", "127.0.0.1", String(primary.port)],
    ]);
    servers.push(r.child);
    replicaPorts.push(r.port);
    await until(
      async () => (await cli(r.port, "info", "replication")).includes("master_link_status:up"),
      "the replica to follow the primary",
    );
  }
  const sentinel = await startSentinel(dir, primary.port);
  servers.push(sentinel.child);
  await until(
    async () => {
      const known = await cli(sentinel.port, "sentinel", "replicas", "crier");
      return replicaPorts.every((port) => known.includes(String(port)));
    },
    "Sentinel to see the replicas",
    15_000,
  );

  const prefix = uniquePrefix("sentinel");
  const url = `redis+sentinel://127.0.0.1:${sentinel.port}/crier`;
  const hubs = (await Promise.all([
    startHub(prefix, { redisUrl: url, args }),
    startHub(prefix, { redisUrl: url, args }),
  ])) as [HubProcess, HubProcess];
  const followers = hubs.flatMap((hub) => [follower(hub), follower(hub)]);
  await until(() => followers.every((f) => f.client.comments > 0), "every subscriber to open");

  const results: { status: number; body: string; ms: number; at: number }[] = [];
  let failedOverAt = 0;
  let okAfter = 0;
  const deadline = Date.now() + 60_000;
  for (let n = 0; okAfter < 40 && Date.now() < deadline; n++) {
    if (n === 40) {
      await cli(sentinel.port, "sentinel", "failover", "crier");
      failedOverAt = Date.now();
    }
    const result = await publish((hubs[n % 2] as HubProcess).url, { topic: "ticks", data: `${n}` });
    results.push({ ...result, at: Date.now() });
    if (n > 40 && result.status === 200) okAfter++;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // Once the nodes have settled on the new primary, one more update through each: a subscriber
  // that was sent back to resume (`earliest`) ends with the stream's end like the others.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const hub of hubs) {
    await until(
      async () => (await publish(hub.url, { topic: "ticks", data: "last" })).status === 200,
      "a publish after the failover",
    );
  }
  const [, now] = (await cli(sentinel.port, "sentinel", "get-master-addr-by-name", "crier")).split(
    "\n",
  );
  const order = await streamIds(prefix, `redis://127.0.0.1:${now}`);
  await until(
    () => followers.every((f) => f.client.ids.at(-1) === order.at(-1)),
    "every subscriber to reach the stream's end",
  ).catch((err: Error) => {
    const seen = followers.map(
      (f) => `${f.client.ids.length} ids, resumes ${JSON.stringify(f.resumes)}`,
    );
    throw new Error(
      `${err.message}: the stream holds ${order.length}; subscribers: ${seen.join("; ")}`,
    );
  });
  await new Promise((resolve) => setTimeout(resolve, 200)); // anything extra would show now
  await Promise.all(followers.map((f) => f.stop()));
  await stopAllHubs();
  return {
    results,
    order,
    followers,
    failedOverAt,
    okAfter,
    newPrimary: Number(now),
    replicaPorts,
  };
}

type Run = Awaited<ReturnType<typeof failover>>;

// What holds whatever the replication: each publish was answered 200 or 5xx, none waited past
// the command timeout (1.5 s, plus the time a request takes to reach a node on this machine),
// publishing resumed, and each subscriber holds the stream with no duplicate and no gap, except
// across a resume answered `earliest` after it had received updates the failover lost.
function assertConsistent(run: Run): void {
  const { results, order, followers, okAfter } = run;
  assert.equal(okAfter, 40, "publishing resumed after the failover");
  assert.ok(run.replicaPorts.includes(run.newPrimary), "a replica is the primary now");
  for (const [n, result] of results.entries()) {
    assert.ok(result.status === 200 || result.status >= 500, `publish ${n}: ${result.status}`);
    assert.ok(result.ms < 5000, `publish ${n} took ${Math.round(result.ms)} ms`);
  }
  const held = new Set(order);
  for (const { client, resumes } of followers) {
    assert.equal(new Set(client.ids).size, client.ids.length, "no duplicate");
    const earliest = resumes.findLast((r) => r.from === "earliest");
    if (earliest === undefined) {
      assert.deepEqual(client.ids, order);
      continue;
    }
    // Before: the stream's beginning, then updates the failover lost; after: the stream's end.
    const before = client.ids.slice(0, earliest.at);
    const kept = before.filter((id) => held.has(id));
    assert.deepEqual(kept, order.slice(0, kept.length));
    assert.ok(kept.length < before.length, "told earliest only after receiving lost updates");
    const rest = client.ids.slice(earliest.at);
    assert.deepEqual(rest, order.slice(order.length - rest.length));
  }
}

describe("two hub nodes behind Sentinel, through SENTINEL FAILOVER", {
  skip,
  timeout: 180_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "crier-sentinel-"));
  const servers: ChildProcess[] = [];

  afterEach(async () => {
    await stopAllHubs();
    for (const server of servers.splice(0)) server.kill("SIGKILL");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a primary and a replica: publishes resume within seconds; a subscriber that received an update the failover lost is told earliest", async () => {
    const run = await failover(1, [], dir, servers);
    assertConsistent(run);
    // The first acknowledged publish after the failover began came within a few seconds.
    const first = run.results.find((r, n) => n > 40 && r.status === 200);
    assert.ok(first !== undefined && first.at - run.failedOverAt < 10_000);
  });

  test("with --redis-wait-replicas 1: every acknowledged publish survives the failover and reaches every subscriber", async () => {
    // The one replica is the one promoted: what it confirmed, it holds. The new primary has no
    // replica until Sentinel turns the old one into one, and refuses publishes until then.
    const run = await failover(1, ["--redis-wait-replicas", "1"], dir, servers);
    assertConsistent(run);
    const held = new Set(run.order);
    const refused = new Set<string>();
    for (const [n, result] of run.results.entries()) {
      if (result.status === 200) assert.ok(held.has(result.body), `acknowledged ${n} was lost`);
      else refused.add(`${n}`);
    }
    // Whatever was delivered and then lost had been refused to its publisher.
    for (const { client } of run.followers) {
      for (const [i, id] of client.ids.entries()) {
        if (!held.has(id))
          assert.ok(refused.has(client.data[i] as string), `${id} was acknowledged`);
      }
    }
  });
});
