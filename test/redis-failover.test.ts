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

const skip = await redisSkipReason("redis-failover (a hub node killed mid-stream)");

describe("a hub node killed mid-stream", { skip, timeout: 60_000 }, () => {
  const prefix = uniquePrefix("failover");
  const clients: SseClient[] = [];

  after(async () => {
    for (const client of clients) client.close();
    await stopAllHubs();
    await deletePrefix(prefix);
  });

  test("its clients resume on another node and end with exactly the stream's contents", async () => {
    const hubs = await Promise.all([startHub(prefix), startHub(prefix), startHub(prefix)]);
    const [doomed, ...survivors] = hubs as [HubProcess, HubProcess, HubProcess];
    for (const hub of hubs) {
      for (let i = 0; i < 3; i++) {
        const client = new SseClient("ticks");
        await client.connect(hub.url);
        clients.push(client);
      }
    }
    const onDoomed = clients.slice(0, 3);
    // Each client of the killed node comes back on a surviving node, with Last-Event-ID.
    const resumed = onDoomed.map(async (client, i) => {
      await client.ended();
      await client.connect((survivors[i % 2] as HubProcess).url);
    });

    let alive: HubProcess[] = hubs;
    for (let n = 0; n < 150; n++) {
      if (n === 50) {
        doomed.child.kill("SIGKILL");
        alive = survivors;
      }
      // A publish to the node being killed may fail; it may still be in the stream.
      await publish((alive[n % alive.length] as HubProcess).url, { topic: "ticks", data: `${n}` });
    }
    await Promise.all(resumed);

    const order = await streamIds(prefix);
    assert.ok(order.length >= 149, `stream holds ${order.length}`);
    await waitFor(() => clients.every((c) => c.ids.length >= order.length), 10_000, "all ticks");
    await new Promise((resolve) => setTimeout(resolve, 200)); // anything extra would show now
    for (const client of clients) assert.deepEqual(client.ids, order);
    for (const client of onDoomed) {
      assert.equal(client.ends, 1);
      assert.notEqual(client.resumedFrom, "earliest");
    }
  });
});
