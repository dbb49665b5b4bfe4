import assert from "node:assert/strict";
import { after, afterEach, describe, test } from "node:test";
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

const skip = await redisSkipReason("redis-cluster (three hub nodes sharing one Redis)");

describe("three hub nodes sharing one Redis", { skip, timeout: 60_000 }, () => {
  const prefixes: string[] = [];
  const clients: SseClient[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await stopAllHubs();
    await Promise.all(prefixes.splice(0).map((prefix) => deletePrefix(prefix)));
  });
  after(stopAllHubs);

  async function nodes(count: number): Promise<{ prefix: string; hubs: HubProcess[] }> {
    const prefix = uniquePrefix("cluster");
    prefixes.push(prefix);
    const hubs = await Promise.all(Array.from({ length: count }, () => startHub(prefix)));
    return { prefix, hubs };
  }

  async function subscribe(url: string, topic: string): Promise<SseClient> {
    const client = new SseClient(topic);
    clients.push(client);
    await client.connect(url);
    return client;
  }

  test("every subscriber on every node receives every update once, in one global order", async () => {
    const { prefix, hubs } = await nodes(3);
    const subscribers = await Promise.all(
      hubs.flatMap((hub) => [subscribe(hub.url, "chat"), subscribe(hub.url, "chat")]),
    );
    // Batches of concurrent publishes on every node at once, so the nodes race to append, and
    // each node's early delivery of its own publishes races the others' appends.
    const acked: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          publish((hubs[i % 3] as HubProcess).url, { topic: "chat", data: `m${batch}.${i}` }),
        ),
      );
      for (const result of results) {
        assert.equal(result.status, 200, result.body);
        acked.push(result.body);
      }
    }
    const order = await streamIds(prefix);
    assert.equal(order.length, 120);
    assert.deepEqual([...order].sort(), [...acked].sort());
    await waitFor(() => subscribers.every((s) => s.ids.length >= 120), 10_000, "120 updates each");
    await new Promise((resolve) => setTimeout(resolve, 200)); // anything extra would show now
    for (const subscriber of subscribers) assert.deepEqual(subscriber.ids, order);
  });

  test("a subscriber resumes on another node, after a generated or a publisher's id", async () => {
    const { hubs } = await nodes(2);
    const [a, b] = hubs as [HubProcess, HubProcess];
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const id = i === 2 ? "urn:uuid:order-2" : undefined;
      const result = await publish(i % 2 === 0 ? a.url : b.url, {
        topic: "orders",
        data: `o${i}`,
        ...(id === undefined ? {} : { id }),
      });
      assert.equal(result.status, 200, result.body);
      ids.push(result.body);
    }
    assert.equal(ids[2], "urn:uuid:order-2");

    const fromPublisherId = await subscribe(b.url, "orders");
    fromPublisherId.close();
    const resumed = new SseClient("orders");
    clients.push(resumed);
    await resumed.connect(b.url, "urn:uuid:order-2");
    assert.equal(resumed.resumedFrom, "urn:uuid:order-2");
    await waitFor(() => resumed.ids.length >= 3, 5000, "the replay");
    assert.deepEqual(resumed.ids, ids.slice(3));

    const fromGenerated = new SseClient("orders");
    clients.push(fromGenerated);
    await fromGenerated.connect(a.url, ids[0]);
    await waitFor(() => fromGenerated.ids.length >= 5, 5000, "the replay");
    assert.deepEqual(fromGenerated.ids, ids.slice(1));

    const duplicate = await publish(b.url, {
      topic: "orders",
      data: "again",
      id: "urn:uuid:order-2",
    });
    assert.equal(duplicate.status, 409, duplicate.body);
  });
});
