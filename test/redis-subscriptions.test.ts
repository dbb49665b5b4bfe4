import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { RedisBackplane } from "../src/backplane/redis.ts";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { openStream, SECRET, type StreamClient, startHub, type TestHub } from "./helpers.ts";
import { deletePrefix, REDIS_URL, redisSkipReason, uniquePrefix } from "./redis-harness.ts";

const skip = await redisSkipReason("redis-subscriptions (subscription events across nodes)");

describe("active subscriptions on two nodes sharing Redis", { skip, timeout: 30_000 }, () => {
  const prefix = uniquePrefix("subscriptions");
  const hubs: TestHub[] = [];
  const streams: StreamClient[] = [];
  after(async () => {
    for (const s of streams) s.close();
    await Promise.all(hubs.map((h) => h.close()));
    await deletePrefix(prefix);
  });

  async function node(): Promise<TestHub> {
    const backplane = new RedisBackplane({ url: REDIS_URL, prefix });
    const hub = await startHub({ backplane, keepAliveMs: 0 }, { subscriptions: true });
    await hub.hub.ready();
    hubs.push(hub);
    return hub;
  }

  test("a subscription on one node is announced to a watcher on the other; each API lists its own", async () => {
    const [a, b] = [await node(), await node()];
    const jwt = await mintToken(SECRET, { subscribe: ["*"] });
    const auth = { Authorization: `Bearer ${jwt}` };
    const watcher = await openStream(
      `${b.url}?topic=${encodeURIComponent("/.well-known/mercure/subscriptions/{topic}/{subscriber}")}`,
      auth,
    );
    streams.push(watcher);
    let remote = "";
    a.hub.once("connect", (subscription) => {
      remote = subscription.id;
    });
    const reader = await openStream(`${a.url}?topic=https://example.com/shared`);
    streams.push(reader);
    // The watcher's own subscription event first, then the one from the other node.
    const [, event] = await watcher.waitForEvents(2);
    const doc = JSON.parse(event?.data ?? "");
    assert.deepEqual(
      [doc.topic, doc.subscriber, doc.active],
      ["https://example.com/shared", remote, true],
    );
    const list = async (hub: TestHub) => {
      const res = await fetch(`${new URL(hub.url).origin}/.well-known/mercure/subscriptions`, {
        headers: auth,
      });
      const body = (await res.json()) as { subscriptions: { topic: string }[] };
      return body.subscriptions.map((s) => s.topic);
    };
    assert.deepEqual(await list(a), ["https://example.com/shared"]);
    assert.deepEqual(await list(b), ["/.well-known/mercure/subscriptions/{topic}/{subscriber}"]);
    reader.close();
    const [, , ended] = await watcher.waitForEvents(3);
    assert.equal(JSON.parse(ended?.data ?? "").active, false);
  });
});
