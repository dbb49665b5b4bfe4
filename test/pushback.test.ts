import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, test } from "node:test";
import { isCrierError } from "../src/errors.ts";
import { createHub, type Hub } from "../src/hub.ts";
import type { Subscription } from "../src/subscriber.ts";
import { openStream, publish, sleep, startHub, until } from "./helpers.ts";

const LANES = 8;
const FLOOD = 3000;
const MAX_EVENTS = 256;

// Eight publishers that never yield to the event loop: each awaits its publish and sends the
// next at once. With an in-memory backplane a publish resolves in the same turn, so without
// pushback nothing is ever flushed until the whole flood is queued. A refused publish is sent
// again after a turn (what a publisher does with `Retry-After`).
async function flood(hub: Hub, count: number): Promise<number> {
  let next = 0;
  let refused = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const seq = next++;
      for (;;) {
        try {
          await hub.publish({ topics: "flood", data: String(seq) });
          break;
        } catch (err) {
          if (!isCrierError(err, "CRIER_ERR_OVERLOADED")) throw err;
          refused++;
          await sleep(1);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  return refused;
}

describe("a publish flood", () => {
  test("with pushback on, ends with every reader connected and holding every update in order", async () => {
    const t = await startHub({ queue: { maxEvents: MAX_EVENTS } });
    const reasons: string[] = [];
    t.hub.on("disconnect", (_, reason) => reasons.push(reason));
    const readers = await Promise.all([1, 2, 3].map(() => openStream(`${t.url}?topic=flood`)));
    try {
      await until(() => t.hub.stats.subscribers === 3, "three subscriptions");
      await flood(t.hub, FLOOD);
      for (const reader of readers) {
        const events = await reader.waitForEvents(FLOOD, 30_000);
        // Lanes interleave, so order is checked as the hub's: ids ascending, each update once.
        const seqs = events.map((e) => Number(e.data)).sort((a, b) => a - b);
        assert.deepEqual(
          seqs,
          Array.from({ length: FLOOD }, (_, i) => i),
        );
        const ids = events.map((e) => e.id);
        assert.equal(new Set(ids).size, FLOOD);
      }
      assert.deepEqual(reasons, [], "no subscription ended");
      assert.equal(t.hub.stats.evicted, 0);
      assert.ok(t.hub.stats.pushback.held > 0, "the flood was held back");
      assert.equal(t.hub.stats.published, FLOOD);
    } finally {
      for (const reader of readers) reader.close();
      await t.close();
    }
  });

  test("with pushback off, evicts every reader at its queue bound (what pushback prevents)", async () => {
    const t = await startHub({ queue: { maxEvents: MAX_EVENTS }, pushback: false });
    const reasons: string[] = [];
    t.hub.on("disconnect", (_, reason) => reasons.push(reason));
    const readers = await Promise.all([1, 2, 3].map(() => openStream(`${t.url}?topic=flood`)));
    try {
      await until(() => t.hub.stats.subscribers === 3, "three subscriptions");
      await flood(t.hub, FLOOD);
      assert.deepEqual(reasons, ["overflow", "overflow", "overflow"]);
      assert.deepEqual(t.hub.stats.pushback, { enabled: false, held: 0, refused: 0 });
    } finally {
      for (const reader of readers) reader.close();
      await t.close();
    }
  });
});

describe("a subscriber that never reads", () => {
  test("is evicted at its own bound and never makes the hub push back", async () => {
    const MAX_BYTES = 256 * 1024;
    const UPDATE_BYTES = 32 * 1024;
    const UPDATES = 200; // 6.4 MiB: more than the socket buffers and the queue hold
    // The hold threshold (64 KiB, a quarter of the queue bound) is far below what the stalled
    // subscriber's queue reaches; only the hub's own backlog counts against it.
    const t = await startHub({
      queue: { maxBytes: MAX_BYTES },
      pushback: { holdMs: 60_000, refuseMs: 60_000 },
      // A flush every turn, so the hub's own backlog is the one update of the turn; with a
      // window it would gather several of these 32 KiB updates and pass the hold bytes itself.
      flushWindowMs: 0,
    });
    const subscriptions: Subscription[] = [];
    t.hub.on("connect", (s) => subscriptions.push(s));
    const reasons: string[] = [];
    t.hub.on("disconnect", (_, reason) => reasons.push(reason));
    const stalled = connect(t.port, "127.0.0.1");
    stalled.on("error", () => {});
    stalled.write(`GET /.well-known/mercure?topic=big HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    stalled.pause();
    await until(() => subscriptions.length === 1, "the stalled subscription");
    const slow = subscriptions[0] as Subscription;
    const readers = await Promise.all([1, 2].map(() => openStream(`${t.url}?topic=big`)));
    try {
      await until(() => t.hub.stats.subscribers === 3, "three subscriptions");
      let highest = 0;
      const payload = "x".repeat(UPDATE_BYTES);
      for (let i = 0; i < UPDATES; i++) {
        await t.hub.publish({ topics: "big", data: `${i}:${payload}` });
        highest = Math.max(highest, slow.queued.bytes);
        await sleep(1); // one update per turn: the hub's own backlog stays at one update
      }
      for (const reader of readers) {
        const events = await reader.waitForEvents(UPDATES, 30_000);
        assert.deepEqual(
          events.map((e) => Number(e.data.slice(0, e.data.indexOf(":")))),
          Array.from({ length: UPDATES }, (_, i) => i),
        );
      }
      assert.deepEqual(reasons, ["overflow"]);
      assert.equal(slow.closed, true);
      assert.ok(highest > MAX_BYTES / 4, `its queue reached ${highest} bytes, past the hold bytes`);
      assert.deepEqual(t.hub.stats.pushback, { enabled: true, held: 0, refused: 0 });
    } finally {
      stalled.destroy();
      for (const reader of readers) reader.close();
      await t.close();
    }
  });
});

describe("over HTTP, a publish past the refuse threshold", () => {
  test("answers 503 with Retry-After and a one-line reason, and stores nothing", async () => {
    // Refuse as soon as one update of this turn is still to be written: concurrent publishes
    // that reach the hub in the same turn as an accepted one are refused.
    const t = await startHub({ pushback: { holdBytes: 1, refuseBytes: 1 } });
    const reader = await openStream(`${t.url}?topic=http`);
    try {
      await until(() => t.hub.stats.subscribers === 1, "the subscription");
      const accepted: string[] = [];
      const refused: { status: number; body: string; raw: string; retryAfter: string | null }[] =
        [];
      for (let burst = 0; burst < 50 && refused.length === 0; burst++) {
        const answers = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            publish(t.url, { topic: "http", data: `${burst}-${i}` }, t.publisherToken).then(
              (r) => ({ r, data: `${burst}-${i}` }),
            ),
          ),
        );
        for (const { r, data } of answers) {
          if (r.status === 200) accepted.push(data);
          else refused.push({ ...r, retryAfter: r.headers.get("retry-after") });
        }
      }
      assert.ok(refused.length > 0, "some publish met a backlog");
      for (const r of refused) {
        assert.equal(r.status, 503);
        assert.equal(r.retryAfter, "1");
        assert.match(r.body, /^the hub is overloaded \(.*\); nothing was stored, retry in 1 s$/);
        assert.equal(r.raw, `${r.body}\n`, "one line");
      }
      // Exactly the accepted updates were stored and delivered, in the hub's order.
      assert.equal(await t.hub.historySize(), accepted.length);
      assert.equal(t.hub.stats.pushback.refused, refused.length);
      const events = await reader.waitForEvents(accepted.length, 30_000);
      assert.deepEqual(events.map((e) => e.data).sort(), [...accepted].sort());
    } finally {
      reader.close();
      await t.close();
    }
  });
});

describe("the pushback option", () => {
  test("refuses thresholds that cannot work, naming the option", () => {
    for (const pushback of [
      { holdMs: 100, refuseMs: 10 },
      { holdBytes: 10, refuseBytes: 1 },
    ]) {
      assert.throws(
        () => createHub({ pushback }),
        (err: unknown) =>
          isCrierError(err, "CRIER_ERR_INVALID_OPTION") && /refuse/.test(String(err)),
      );
    }
    assert.throws(
      () => createHub({ pushback: { holdMs: 0 } }),
      (err: unknown) =>
        isCrierError(err, "CRIER_ERR_INVALID_OPTION") && /pushback\.holdMs/.test(String(err)),
    );
    assert.throws(
      () => createHub({ pushback: true as unknown as false }),
      (err: unknown) => isCrierError(err, "CRIER_ERR_INVALID_OPTION"),
    );
  });

  test("reports an empty backlog between turns and the backlog of the turn while it lasts", async () => {
    const hub = createHub();
    const stream = hub.updates({ topics: ["t"] });
    try {
      assert.deepEqual(hub.stats.backlog, { ageMs: 0, updates: 0, bytes: 0 });
      const first = await hub.publish({ topics: "t", data: "a" });
      const second = await hub.publish({ topics: "t", data: "b" });
      const backlog = hub.stats.backlog;
      assert.equal(backlog.updates, 2);
      assert.equal(backlog.bytes, first.bytes.length + second.bytes.length);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(hub.stats.backlog, { ageMs: 0, updates: 0, bytes: 0 });
    } finally {
      stream.close();
      await hub.close();
    }
  });
});
