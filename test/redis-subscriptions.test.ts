import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { RedisBackplane } from "../src/backplane/redis.ts";
import { createHub } from "../src/hub.ts";
import { activeSubscriptionsOf } from "../src/mercure/active.ts";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { openStream, SECRET, type StreamClient, startHub, type TestHub, until } from "./helpers.ts";
import {
  deletePrefix,
  type HubProcess,
  JWT_KEY,
  REDIS_URL,
  redisSkipReason,
  startHub as startProcess,
  stopAllHubs,
  uniquePrefix,
} from "./redis-harness.ts";

const skip = await redisSkipReason("redis-subscriptions (subscription events across nodes)");

/** A hub node on `prefix` with the subscription API, ready, and kept in `hubs` to close. */
async function subscriptionsNode(prefix: string, hubs: TestHub[]): Promise<TestHub> {
  const backplane = new RedisBackplane({ url: REDIS_URL, prefix });
  const hub = await startHub({ backplane, keepAliveMs: 0 }, { subscriptions: true });
  await hub.hub.ready();
  hubs.push(hub);
  return hub;
}

describe("active subscriptions on two nodes sharing Redis", { skip, timeout: 30_000 }, () => {
  const prefix = uniquePrefix("subscriptions");
  const hubs: TestHub[] = [];
  const streams: StreamClient[] = [];
  after(async () => {
    for (const s of streams) s.close();
    await Promise.all(hubs.map((h) => h.close()));
    await deletePrefix(prefix);
  });

  const node = () => subscriptionsNode(prefix, hubs);

  test("a subscription on one node is announced to a watcher on the other; each API lists both nodes' subscriptions", async () => {
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
      return body.subscriptions.map((s) => s.topic).sort();
    };
    const both = [
      "/.well-known/mercure/subscriptions/{topic}/{subscriber}",
      "https://example.com/shared",
    ];
    assert.deepEqual(await list(a), both);
    assert.deepEqual(await list(b), both);
    reader.close();
    const [, , ended] = await watcher.waitForEvents(3);
    assert.equal(JSON.parse(ended?.data ?? "").active, false);
    // The ended subscription has left every node's list.
    assert.deepEqual(await list(b), both.slice(0, 1));
    assert.deepEqual(await list(a), both.slice(0, 1));
  });

  test("a node that stops without a word is forgotten by the others within three keep-alives", async () => {
    const processPrefix = uniquePrefix("subscriptions-kill");
    const run = [
      await startProcess(processPrefix, { args: ["--subscriptions"] }),
      await startProcess(processPrefix, { args: ["--subscriptions"] }),
    ];
    const [a, b] = run as [HubProcess, HubProcess];
    const readers: StreamClient[] = [];
    try {
      const jwt = await mintToken(JWT_KEY, { subscribe: ["*"] });
      readers.push(await openStream(`${a.url}?topic=https://example.com/on-a`));
      readers.push(await openStream(`${b.url}?topic=https://example.com/on-b`));
      const list = async (url: string) => {
        const res = await fetch(`${new URL(url).origin}/.well-known/mercure/subscriptions`, {
          headers: { Authorization: `Bearer ${jwt}` },
        });
        assert.equal(res.status, 200);
        const body = (await res.json()) as { subscriptions: { topic: string }[] };
        return body.subscriptions.map((s) => s.topic).sort();
      };
      const both = ["https://example.com/on-a", "https://example.com/on-b"];
      await until(async () => (await list(a.url)).length === 2, "node a to list both");
      assert.deepEqual(await list(a.url), both);
      assert.deepEqual(await list(b.url), both);
      await b.stop("SIGKILL");
      // --keep-alive 500: forgotten 1.5 s after its last refresh.
      await until(
        async () => (await list(a.url)).length === 1,
        "node a to forget the killed node's subscriptions",
        10_000,
      );
      assert.deepEqual(await list(a.url), ["https://example.com/on-a"]);
    } finally {
      for (const r of readers) r.close();
      await stopAllHubs();
      await deletePrefix(processPrefix);
    }
  });

  test("listing every node's subscriptions with Redis unreachable rejects as unavailable", async () => {
    const backplane = new RedisBackplane({ url: "redis://127.0.0.1:1", prefix });
    const hub = createHub({ backplane, readyTimeoutMs: 200 });
    try {
      await assert.rejects(activeSubscriptionsOf(hub).listAll(), {
        code: "CRIER_ERR_UNAVAILABLE",
        message: /the subscriptions of other nodes cannot be read/,
      });
    } finally {
      await hub.close();
    }
  });
});

// Before, a node that had delivered nothing yet named no id: a fresh stream had no Last-Event-ID
// and the subscription API said `earliest`, from which a client would replay everything.
describe("a node started on updates stored in Redis", { skip, timeout: 30_000 }, () => {
  const prefix = uniquePrefix("newest");
  const hubs: TestHub[] = [];
  after(async () => {
    await Promise.all(hubs.map((h) => h.close()));
    await deletePrefix(prefix);
  });

  const node = () => subscriptionsNode(prefix, hubs);

  test("names the newest in the subscription API and in a fresh stream's head", async () => {
    const a = await node();
    await a.hub.publish({ topics: "https://example.com/before", data: "1" });
    const newest = await a.hub.publish({ topics: "https://example.com/before", data: "2" });
    const late = await node();
    // (Asked first: a stream's own subscription event is an update too.)
    const jwt = await mintToken(SECRET, { subscribe: ["*"] });
    const res = await fetch(`${new URL(late.url).origin}/.well-known/mercure/subscriptions`, {
      headers: { Authorization: `Bearer ${jwt}` },
    });
    assert.equal(((await res.json()) as { lastEventID: string }).lastEventID, newest.id);
    const stream = await openStream(`${late.url}?topic=https://example.com/before`);
    stream.close();
    assert.equal(stream.headers["last-event-id"], newest.id);
    assert.equal(stream.headers["mercure-last-event-id"], newest.id);
  });
});
