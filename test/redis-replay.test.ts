/**
 * Resumes from far back on Redis: the replay comes in pages read as the subscriber writes them,
 * counted against its byte bound, on a connection of its own and at a bounded concurrency.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, describe, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { RedisBackplane, type RedisBackplaneOptions } from "../src/backplane/redis.ts";
import type { HubOptions } from "../src/hub.ts";
import type { CloseReason } from "../src/subscriber.ts";
import { openStream, sleep, startHub, type TestHub, until } from "./helpers.ts";
import {
  deletePrefix,
  REDIS_URL,
  redisSkipReason,
  streamIds,
  uniquePrefix,
} from "./redis-harness.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
}

// Resolves once `read()` has not changed for half a second (the replays stopped writing).
async function settled(read: () => number): Promise<void> {
  for (let last = -1; read() !== last; ) {
    last = read();
    await sleep(500);
  }
}

const skip = await redisSkipReason("redis-replay (paged resumes on Redis)");

describe("resuming from far back on Redis", { skip, timeout: 120_000 }, () => {
  const prefixes: string[] = [];
  const hubs: TestHub[] = [];
  after(async () => {
    await Promise.all(hubs.map((t) => t.close()));
    await Promise.all(prefixes.map((p) => deletePrefix(p)));
  });

  async function open(redis: RedisBackplaneOptions, options: HubOptions = {}) {
    const prefix = uniquePrefix("replay");
    prefixes.push(prefix);
    const backplane = new RedisBackplane({ url: REDIS_URL, prefix, ...redis });
    const t = await startHub({ ...options, backplane });
    hubs.push(t);
    await t.hub.ready();
    return { t, prefix };
  }

  // Publishes `count` updates in batches (as many commands at once as a busy machine answers
  // within the command timeout) and waits until this node has delivered them all.
  async function fill(t: TestHub, count: number, data: (i: number) => string): Promise<void> {
    const start = t.hub.stats.published;
    for (let i = 0; i < count; i += 50) {
      const batch = Array.from({ length: Math.min(50, count - i) }, (_, j) =>
        t.hub.publish({ topics: "feed", data: data(i + j) }),
      );
      await Promise.all(batch);
    }
    await until(() => t.hub.stats.published >= start + count, "every update delivered", 30_000);
  }

  test("delivers a replay of many pages complete, in order and once, while publishing goes on", async () => {
    const { t, prefix } = await open({ replayPageSize: 40 }, { queue: { maxBytes: 256 * 1024 } });
    await fill(t, 2000, (i) => `${i} ${"x".repeat(100)}`);
    const before = await streamIds(prefix);
    const client = await openStream(`${t.url}?topic=feed`, {
      "Last-Event-ID": before[4] as string,
    });
    // 200 more while the replay's 50 pages are read and written.
    for (let i = 0; i < 200; i++) {
      await t.hub.publish({ topics: "feed", data: `live ${i}` });
      if (i % 20 === 0) await sleep(2);
    }
    const all = await streamIds(prefix);
    assert.equal(all.length, 2200);
    await client.waitForEvents(all.length - 5, 30_000);
    await sleep(300); // and nothing more arrives
    client.close();
    assert.deepEqual(
      client.events.map((event) => event.id),
      all.slice(5),
      "every update after the cursor exactly once, in the stream's order",
    );
    assert.equal(client.headers["last-event-id"], before[4]);
  });

  test("keeps subscribers that never read within their byte bound while they replay from far back", async () => {
    const maxBytes = 64 * 1024;
    const stalledCount = 10;
    const { t, prefix } = await open({}, { queue: { maxBytes } });
    // 20 MB of history: more than the loopback socket buffers take.
    const payload = "y".repeat(4000);
    const history = 5000 * 4000;
    await fill(t, 5000, (i) => `${i} ${payload}`);
    const [first] = await streamIds(prefix);
    const reasons: CloseReason[] = [];
    t.hub.on("disconnect", (_, why) => reasons.push(why));
    const heapBefore = heapAfterGc();
    // Raw sockets that send their request and then never read a byte.
    const stalled = Array.from({ length: stalledCount }, () => {
      const socket = connect(t.port, "127.0.0.1");
      socket.write(
        `GET /.well-known/mercure?topic=feed HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: ${first}\r\n\r\n`,
      );
      socket.pause();
      return socket;
    });
    try {
      await until(() => t.hub.stats.subscribers === stalledCount, "the subscriptions");
      await settled(() => t.hub.stats.bytesWritten);
      const held = heapAfterGc() - heapBefore;
      // Each replay alone is 20 MB: holding it per subscriber would be 200 MB.
      assert.ok(held < 60 * 1024 * 1024, `the hub's heap grew by ${held} bytes`);
      assert.ok(t.hub.queued.bytes <= stalledCount * maxBytes);
      assert.ok(
        t.hub.stats.bytesWritten < (stalledCount * history) / 2,
        `the replays stopped when the sockets backed up (${t.hub.stats.bytesWritten} bytes written)`,
      );
      let highest = 0;
      // Live updates keep coming: they wait behind the replays, and fill the bounds.
      for (let i = 0; i < 2000 && t.hub.stats.subscribers > 0; i++) {
        await t.hub.publish({ topics: "feed", data: `live ${i} ${payload}` });
        highest = Math.max(highest, t.hub.queued.bytes);
      }
      assert.deepEqual(reasons, Array(stalledCount).fill("overflow"), "each evicted at its bound");
      assert.ok(highest <= stalledCount * maxBytes, `held ${highest} bytes in queues`);
      assert.equal(t.hub.queued.bytes, 0, "an evicted subscriber holds nothing");
    } finally {
      for (const socket of stalled) socket.destroy();
    }
  });

  test("completes every one of many simultaneous resumes beyond the read concurrency", async () => {
    const { t, prefix } = await open({ replayConcurrency: 2, replayPageSize: 50 });
    await fill(t, 500, (i) => `${i}`);
    const ids = await streamIds(prefix);
    const clients = await Promise.all(
      Array.from({ length: 60 }, () =>
        openStream(`${t.url}?topic=feed`, { "Last-Event-ID": ids[9] as string }),
      ),
    );
    try {
      for (const client of clients) {
        assert.equal(client.status, 200);
        const events = await client.waitForEvents(490, 30_000);
        assert.deepEqual(
          events.map((event) => event.id),
          ids.slice(10),
        );
      }
      assert.deepEqual(t.hub.stats.resumes, { total: 60, earliest: 0 });
      assert.deepEqual(t.hub.stats.disconnects, {}, "none failed");
    } finally {
      for (const client of clients) client.close();
    }
  });
});
