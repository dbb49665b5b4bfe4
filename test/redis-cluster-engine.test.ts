import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Cluster, Redis } from "ioredis";
import { keyBase } from "../src/history/redis-keys.ts";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { until } from "./helpers.ts";
import {
  type HubProcess,
  JWT_KEY,
  publish,
  SseClient,
  startHub,
  stopAllHubs,
  uniquePrefix,
  waitFor,
} from "./redis-harness.ts";
import { type RedisCluster, redisToolsSkipReason, startCluster } from "./redis-servers.ts";

const skip = redisToolsSkipReason("redis-cluster-engine");

describe("two hub nodes on a three-primary Redis Cluster", { skip, timeout: 90_000 }, () => {
  let cluster: RedisCluster | undefined;
  const clients: SseClient[] = [];
  let url = "";
  let seed = 0;

  before(async () => {
    cluster = await startCluster({ primaries: 3 });
    url = cluster.url;
    seed = cluster.ports[0] as number;
  });

  after(async () => {
    for (const client of clients) client.close();
    await stopAllHubs();
    cluster?.stop();
  });

  async function subscribe(hub: HubProcess, topic: string, lastEventId?: string) {
    const client = new SseClient(topic);
    clients.push(client);
    await client.connect(hub.url, lastEventId);
    return client;
  }

  async function streamData(prefix: string): Promise<string[]> {
    const cluster = new Cluster([{ host: "127.0.0.1", port: seed }]);
    try {
      const entries = await cluster.xrange(`${keyBase(prefix)}stream`, "-", "+");
      return entries.map(([, fields]) => {
        const payload = JSON.parse(fields[fields.indexOf("u") + 1] as string) as { d?: string };
        return String(payload.d);
      });
    } finally {
      cluster.disconnect();
    }
  }

  async function streamIds(prefix: string): Promise<string[]> {
    const cluster = new Cluster([{ host: "127.0.0.1", port: seed }]);
    try {
      const entries = await cluster.xrange(`${keyBase(prefix)}stream`, "-", "+");
      return entries.map(([position, fields]) => {
        const field = (name: string) => fields[fields.indexOf(name) + 1] as string;
        const payload = JSON.parse(field("u")) as { i?: string };
        return payload.i ?? `#${field("e")}:${position}`;
      });
    } finally {
      cluster.disconnect();
    }
  }

  test("updates published on either node reach subscribers on both, once, in the stream's order, and resume across nodes", async () => {
    const prefix = uniquePrefix("cluster-engine");
    const [a, b] = (await Promise.all([
      startHub(prefix, { redisUrl: url }),
      startHub(prefix, { redisUrl: url }),
    ])) as [HubProcess, HubProcess];
    const subscribers = [await subscribe(a, "chat"), await subscribe(b, "chat")];
    const acked: string[] = [];
    for (let i = 0; i < 30; i++) {
      const id = i === 10 ? "urn:uuid:cluster-10" : undefined;
      const result = await publish((i % 2 === 0 ? a : b).url, {
        topic: "chat",
        data: `m${i}`,
        ...(id === undefined ? {} : { id }),
      });
      assert.equal(result.status, 200, result.body);
      acked.push(result.body);
    }
    const order = await streamIds(prefix);
    assert.deepEqual(order, acked);
    await waitFor(() => subscribers.every((s) => s.ids.length >= 30), 10_000, "30 updates each");
    await new Promise((resolve) => setTimeout(resolve, 200)); // anything extra would show now
    for (const subscriber of subscribers) assert.deepEqual(subscriber.ids, order);

    // Resume on the other node after a publisher's id and after a generated one.
    const fromPublisherId = await subscribe(b, "chat", "urn:uuid:cluster-10");
    assert.equal(fromPublisherId.resumedFrom, "urn:uuid:cluster-10");
    const fromGenerated = await subscribe(a, "chat", acked[20]);
    await waitFor(
      () => fromPublisherId.ids.length >= 19 && fromGenerated.ids.length >= 9,
      5000,
      "the replays",
    );
    assert.deepEqual(fromPublisherId.ids, acked.slice(11));
    assert.deepEqual(fromGenerated.ids, acked.slice(21));
    const duplicate = await publish(a.url, { topic: "chat", data: "x", id: "urn:uuid:cluster-10" });
    assert.equal(duplicate.status, 409, duplicate.body);
  });

  test("a publish whose connection drops is answered 503 or stored once, never stored twice", async () => {
    const prefix = uniquePrefix("cluster-no-resend");
    const hub = await startHub(prefix, { redisUrl: url });
    const primaries = (cluster as RedisCluster).ports.slice(0, 3);
    // Every 50 ms, every client connection of every primary is dropped (the hub's included).
    let killing = true;
    const killer = (async () => {
      while (killing) {
        for (const port of primaries) {
          const admin = new Redis({ host: "127.0.0.1", port, lazyConnect: true });
          await admin.connect();
          await admin.call("CLIENT", "KILL", "TYPE", "normal").catch(() => {});
          admin.disconnect();
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const answered = new Map<string, number>();
    let next = 0;
    const lane = async () => {
      const end = Date.now() + 4000;
      while (Date.now() < end) {
        const data = `m${next++}`;
        const result = await publish(hub.url, { topic: "chat", data });
        assert.ok([200, 503].includes(result.status), `${result.status} ${result.body}`);
        answered.set(data, result.status);
      }
    };
    await Promise.all(Array.from({ length: 24 }, lane));
    killing = false;
    await killer;
    const stored = await streamData(prefix);
    // Before: ioredis sent a command whose connection closed again after 100 ms, and the
    // publish script, which had run, ran twice.
    assert.equal(new Set(stored).size, stored.length, "an update stored twice");
    for (const [data, status] of answered) {
      if (status === 200) assert.ok(stored.includes(data), `${data} answered 200, not stored`);
    }
    assert.ok([...answered.values()].filter((s) => s === 200).length > 0, "nothing got through");
  });

  test("the subscriptions API of either node lists both nodes' subscriptions", async () => {
    const prefix = uniquePrefix("cluster-subscriptions");
    const [a, b] = (await Promise.all([
      startHub(prefix, { redisUrl: url, args: ["--subscriptions"] }),
      startHub(prefix, { redisUrl: url, args: ["--subscriptions"] }),
    ])) as [HubProcess, HubProcess];
    await subscribe(a, "https://example.com/on-a");
    await subscribe(b, "https://example.com/on-b");
    const jwt = await mintToken(JWT_KEY, { subscribe: ["*"] });
    const list = async (hub: HubProcess) => {
      const res = await fetch(`${new URL(hub.url).origin}/.well-known/mercure/subscriptions`, {
        headers: { Authorization: `Bearer ${jwt}` },
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { subscriptions: { topic: string }[] };
      return body.subscriptions.map((s) => s.topic).sort();
    };
    const both = ["https://example.com/on-a", "https://example.com/on-b"];
    await until(async () => (await list(a)).length === 2, "node a to list both");
    assert.deepEqual(await list(a), both);
    assert.deepEqual(await list(b), both);
  });
});
