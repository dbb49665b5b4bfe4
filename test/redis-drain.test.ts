/**
 * A drain over Redis: two hub processes share one stream; node A gets SIGTERM while updates keep
 * being published, its streams are ended spread over the drain window, and each of its clients
 * resumes on node B with Last-Event-ID and ends with exactly the stream's contents.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  deletePrefix,
  type HubProcess,
  publish,
  redisSkipReason,
  SseClient,
  startHub,
  stopAllHubs,
  streamIds,
  uniquePrefix,
  waitFor,
} from "./redis-harness.ts";

const skip = await redisSkipReason("redis-drain (a node drained on SIGTERM)");
const SUBSCRIBERS = 100;
const DRAIN_MS = 3000;

describe("a hub node drained on SIGTERM while publishing goes on", {
  skip,
  timeout: 90_000,
}, () => {
  const prefix = uniquePrefix("drain");
  const clients: SseClient[] = [];

  after(async () => {
    for (const client of clients) client.close();
    await stopAllHubs();
    await deletePrefix(prefix);
  });

  test("every client resumes on the other node with nothing lost or doubled, and the node exits 0 in its window", async () => {
    const a = await startHub(prefix, { args: ["--drain-timeout", String(DRAIN_MS)] });
    const b = await startHub(prefix);
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const client = new SseClient("ticks");
      await client.connect(a.url);
      clients.push(client);
    }
    // Each stream A ends comes back on B, resuming after the last id it received.
    const resumed = clients.map(async (client) => {
      await client.ended();
      await client.connect(b.url);
    });
    // Every client holds an id before the drain, so each has something to resume from.
    assert.equal((await publish(a.url, { topic: "ticks", data: "first" })).status, 200);
    await waitFor(() => clients.every((c) => c.ids.length === 1), 10_000, "the first tick");

    let drained = false;
    let publishing = true;
    const publisher = (async () => {
      for (let n = 0; publishing; n++) {
        // Both nodes take publishes until A has drained; a publish refused by A (connection
        // closed) was not stored, and one that got through is in the stream either way.
        const target: HubProcess = !drained && n % 2 === 0 ? a : b;
        await publish(target.url, { topic: "ticks", data: `${n}` });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await waitFor(() => (clients[0]?.ids.length ?? 0) >= 20, 10_000, "publishing under way");

    const before = (await streamIds(prefix)).length;
    const signalled = Date.now();
    const exitCode = a.stop("SIGTERM");
    assert.equal(await exitCode, 0, "A exits 0");
    const exitedAfter = Date.now() - signalled;
    drained = true;
    // Generous: the window plus the process's own exit.
    assert.ok(exitedAfter < DRAIN_MS + 3000, `A exited ${exitedAfter} ms after SIGTERM`);
    await Promise.all(resumed);
    await new Promise((resolve) => setTimeout(resolve, 300)); // a few more ticks, on B alone
    publishing = false;
    await publisher;

    const order = await streamIds(prefix);
    assert.ok(order.length > before + 10, `publishing went on: ${before} then ${order.length}`);
    await waitFor(() => clients.every((c) => c.ids.length >= order.length), 15_000, "all ticks");
    await new Promise((resolve) => setTimeout(resolve, 200)); // anything extra would show now
    for (const client of clients) {
      assert.deepEqual(client.ids, order, "exactly the stream, in order");
      assert.equal(client.ends, 1, "ended once, by the drain");
      assert.notEqual(client.resumedFrom, "earliest", "resumed from its own id");
    }
    assert.ok(
      a.log.join("").includes("drain finished"),
      "A says its drain finished before it exits",
    );
  });
});
