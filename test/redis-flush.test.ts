import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { after, afterEach, describe, test } from "node:test";
import {
  deletePrefix,
  type HubProcess,
  hasRedisServer,
  publish,
  redisSkipReason,
  SseClient,
  startHub,
  startRedis,
  stopAllHubs,
  uniquePrefix,
  waitFor,
} from "./redis-harness.ts";

const skip = await redisSkipReason("redis-flush (the stream lost under running hubs)");

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

  test("after the prefix's keys are deleted, live streams are ended and every old id resumes from earliest", async () => {
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
    // The history the live stream could resume from is gone: it is ended, not silently fed
    // the new stream, and its client is told `earliest` when it comes back.
    await waitFor(() => live.ends === 1, 5000, "the live stream to end");
    assert.deepEqual(live.ids, before);
    await live.connect(a.url);
    assert.equal(live.resumedFrom, "earliest");

    const stale = await client(a.url, before[1]);
    assert.equal(stale.resumedFrom, "earliest");
    const fresh = await client(a.url, since[0]);
    assert.equal(fresh.resumedFrom, since[0]);
    await waitFor(() => fresh.ids.length === 1, 5000, "the replay");
    const after = await publishAll(a, ["6"]);
    await waitFor(
      () => stale.ids.length === 1 && fresh.ids.length === 2 && live.ids.length === 4,
      5000,
      "update 6",
    );
    assert.deepEqual(stale.ids, after);
    assert.deepEqual(live.ids, [...before, ...after]);
    assert.deepEqual(fresh.ids, [since[1], ...after]);
  });

  test("after Redis restarts empty, live streams are ended, old ids resume from earliest, and the tails follow the new stream", {
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
    await waitFor(() => live.ends === 1, 10_000, "the live stream to end");
    assert.deepEqual(live.ids, before);
    await live.connect(a.url);
    assert.equal(live.resumedFrom, "earliest");
    const stale = await client(b.url, before[0]);
    assert.equal(stale.resumedFrom, "earliest");
    const next = await publishAll(b, ["4"]);
    await waitFor(() => live.ids.length === 3, 10_000, "the next update of the new stream");
    assert.deepEqual(live.ids, [...before, ...next]);
  });
});
