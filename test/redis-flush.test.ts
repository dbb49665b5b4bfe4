import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { after, afterEach, describe, test } from "node:test";
import {
  deletePrefix,
  type HubProcess,
  publish,
  redisSkipReason,
  SseClient,
  startHub,
  stopAllHubs,
  uniquePrefix,
  waitFor,
} from "./redis-harness.ts";

const skip = await redisSkipReason("redis-flush (the stream lost under running hubs)");

function hasRedisServer(): boolean {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * A throwaway redis-server without persistence, so a restart loses everything. Redis cannot
 * listen on port 0 and say which port it got, so without `port` it tries random ports until
 * one binds (no listen-close-reuse race: a taken port makes redis-server exit, and the next is
 * tried).
 */
async function startRedis(port?: number): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const tried = port ?? 20_000 + Math.floor(Math.random() * 40_000);
    const child = spawn(
      "redis-server",
      ["--port", String(tried), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    let out = "";
    const ready = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 5000);
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
        if (out.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) return { child, port: tried };
    if (port !== undefined || attempt >= 10) throw new Error(`redis-server did not start: ${out}`);
  }
}

describe("the stream lost under running hubs", { skip, timeout: 60_000 }, () => {
  const prefixes: string[] = [];
  const clients: SseClient[] = [];
  const servers: ChildProcess[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await stopAllHubs();
    for (const server of servers.splice(0)) {
      server.kill("SIGKILL");
      if (server.exitCode === null) await once(server, "exit");
    }
    await Promise.all(prefixes.splice(0).map((prefix) => deletePrefix(prefix)));
  });
  after(stopAllHubs);

  async function client(url: string, lastEventId?: string): Promise<SseClient> {
    const sse = new SseClient("feed");
    clients.push(sse);
    await sse.connect(url, lastEventId);
    return sse;
  }

  async function publishAll(hub: HubProcess, data: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const d of data) {
      const result = await publish(hub.url, { topic: "feed", data: d });
      assert.equal(result.status, 200, result.body);
      ids.push(result.body);
    }
    return ids;
  }

  test("after the prefix's keys are deleted, old ids resume from earliest and live updates go on", async () => {
    const prefix = uniquePrefix("flush");
    prefixes.push(prefix);
    const [a, b] = (await Promise.all([startHub(prefix), startHub(prefix)])) as [
      HubProcess,
      HubProcess,
    ];
    const live = await client(a.url);
    const before = await publishAll(b, ["1", "2", "3"]);
    await waitFor(() => live.ids.length === 3, 5000, "the first updates");

    await deletePrefix(prefix);
    const since = await publishAll(b, ["4", "5"]);
    assert.notEqual(since[0]?.split(":")[0], before[0]?.split(":")[0], "a new epoch");
    await waitFor(() => live.ids.length === 5, 5000, "updates of the new stream");
    assert.deepEqual(live.ids, [...before, ...since]);

    const stale = await client(a.url, before[1]);
    assert.equal(stale.resumedFrom, "earliest");
    const fresh = await client(a.url, since[0]);
    assert.equal(fresh.resumedFrom, since[0]);
    await waitFor(() => fresh.ids.length === 1, 5000, "the replay");
    const after = await publishAll(a, ["6"]);
    await waitFor(() => stale.ids.length === 1 && fresh.ids.length === 2, 5000, "update 6");
    assert.deepEqual(stale.ids, after);
    assert.deepEqual(fresh.ids, [since[1], ...after]);
  });

  test("after Redis restarts empty, the tails follow the new stream and old ids resume from earliest", {
    skip: hasRedisServer() ? false : "redis-server is not installed",
  }, async () => {
    const { child, port } = await startRedis();
    servers.push(child);
    const redisUrl = `redis://127.0.0.1:${port}`;
    const prefix = uniquePrefix("restart");
    const [a, b] = (await Promise.all([
      startHub(prefix, { redisUrl }),
      startHub(prefix, { redisUrl }),
    ])) as [HubProcess, HubProcess];
    const live = await client(a.url);
    const before = await publishAll(b, ["1", "2"]);
    await waitFor(() => live.ids.length === 2, 5000, "the first updates");

    const old = servers.pop() as ChildProcess;
    old.kill("SIGKILL");
    await once(old, "exit");
    const down = await publish(b.url, { topic: "feed", data: "lost" });
    assert.equal(down.status, 503, down.body);
    servers.push((await startRedis(port)).child);

    const deadline = Date.now() + 10_000;
    let since: { status: number; body: string } = down;
    while (since.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      since = await publish(b.url, { topic: "feed", data: "3" });
    }
    assert.equal(since.status, 200, since.body);
    await waitFor(() => live.ids.length === 3, 10_000, "the update of the new stream");
    assert.deepEqual(live.ids, [...before, since.body]);
    assert.equal(live.ends, 0);
    const stale = await client(b.url, before[0]);
    assert.equal(stale.resumedFrom, "earliest");
  });
});
