import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import type { Subscription } from "../src/subscriber.ts";
import { openStream, sleep, startHub, type TestHub, until } from "./helpers.ts";

const MAX_BYTES = 256 * 1024;
const UPDATE_BYTES = 32 * 1024;
const UPDATES = 400; // 12.5 MiB: far more than the socket buffers and the queue can hold

describe("a subscriber that stops reading", () => {
  let t: TestHub;
  before(async () => {
    t = await startHub({ queue: { maxBytes: MAX_BYTES } });
  });
  after(() => t.close());

  test("is evicted at its bound while the others keep receiving everything", async () => {
    const subscriptions: Subscription[] = [];
    t.hub.on("connect", (s) => subscriptions.push(s));
    const evicted: Subscription[] = [];
    t.hub.on("disconnect", (s, reason) => reason === "overflow" && evicted.push(s));

    // A raw socket that sends its request and then never reads a byte.
    const stalled = connect(t.port, "127.0.0.1");
    stalled.write(`GET /.well-known/mercure?topic=big HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    stalled.pause();
    const readers = await Promise.all([1, 2, 3].map(() => openStream(`${t.url}?topic=big`)));
    await until(() => subscriptions.length >= 4, "four subscriptions");
    const slow = subscriptions[0] as Subscription;

    try {
      let highest = 0;
      const payload = "x".repeat(UPDATE_BYTES);
      for (let i = 0; i < UPDATES; i++) {
        await t.hub.publish({ topics: "big", data: `${i}:${payload}` });
        highest = Math.max(highest, slow.queued.bytes);
        if (i % 4 === 0) await sleep(1); // let the readers read and the socket buffers fill
      }
      for (const reader of readers) {
        const events = await reader.waitForEvents(UPDATES, 30_000);
        assert.deepEqual(
          events.map((e) => Number(e.data.slice(0, e.data.indexOf(":")))),
          Array.from({ length: UPDATES }, (_, i) => i),
        );
      }
      assert.deepEqual(evicted, [slow]);
      assert.ok(highest <= MAX_BYTES, `queue reached ${highest} bytes, bound ${MAX_BYTES}`);
      assert.equal(slow.closed, true);
      assert.equal(slow.queued.bytes, 0, "an evicted subscriber holds nothing");
      assert.equal(t.hub.stats.evicted, 1);
    } finally {
      stalled.destroy();
      for (const reader of readers) reader.close();
    }
  });
});

describe("a subscriber whose connection stays backed up on a quiet topic", () => {
  test("is evicted as stalled, and its socket is closed", async () => {
    // A queue bound far above what is sent, so only the stalled check can end it: the kernel's
    // (TCP_USER_TIMEOUT, two intervals of a closed window) or the hub's (four intervals).
    // Four intervals of 1 s: long enough that a loaded machine never stalls the healthy reader.
    const t = await startHub({
      keepAliveMs: 1000,
      queue: { maxBytes: 256 * 1024 * 1024 },
      history: { maxBytes: 8 * 1024 * 1024 },
    });
    const reasons: string[] = [];
    t.hub.on("disconnect", (_, reason) => reasons.push(reason));
    const stalled = connect(t.port, "127.0.0.1");
    stalled.write(`GET /.well-known/mercure?topic=big HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    stalled.pause();
    stalled.on("error", () => {}); // a reset is one way the hub may close it
    const closed = new Promise<void>((resolve) => stalled.once("close", () => resolve()));
    const reader = await openStream(`${t.url}?topic=big`);
    try {
      await until(() => t.hub.stats.subscribers === 2, "two subscriptions");
      // 32 MiB: more than the kernel's socket buffers on both ends hold (they grow to a few MiB
      // each), so writes to the paused socket back up.
      const payload = "x".repeat(UPDATE_BYTES);
      for (let i = 0; i < 1024; i++)
        await t.hub.publish({ topics: "big", data: `${i}:${payload}` });
      // Then the topic goes quiet: nothing more is offered, and the connection never drains.
      await until(() => reasons.includes("stalled"), "the stalled eviction", 30_000);
      assert.deepEqual(reasons, ["stalled"]);
      assert.equal(t.hub.stats.evicted, 1);
      // Reading what it holds lets the client see the end the hub sent.
      stalled.resume();
      await closed;
      assert.equal((await reader.waitForEvents(96, 30_000)).length, 96);
    } finally {
      stalled.destroy();
      reader.close();
      await t.close();
    }
  });
});
