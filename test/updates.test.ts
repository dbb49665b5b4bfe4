import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { createHub, type Hub, isCrierError, type Update } from "../src/index.ts";

describe("hub.updates (in-process consumers)", () => {
  let hub: Hub;
  afterEach(() => hub.close());

  test("yields each matching update, in order, as the Update the hub stored", async () => {
    hub = createHub({ keepAliveMs: 0 });
    const updates = hub.updates({ topics: ["chat"] });
    assert.equal(await updates.earliest, false);
    const published = [
      await hub.publish({ topics: "chat", data: "1" }),
      await hub.publish({ topics: "other", data: "not for us" }),
      await hub.publish({ topics: "chat", data: "2", type: "note" }),
    ];
    const seen: Update[] = [];
    for await (const update of updates) {
      seen.push(update);
      if (seen.length === 2) break;
    }
    assert.deepEqual(seen, [published[0], published[2]]);
    assert.equal(hub.stats.subscribers, 0, "break ends the subscription");
  });

  test("resumes after lastEventId, and says earliest when the history lost it", async () => {
    hub = createHub({ keepAliveMs: 0, history: { maxEvents: 2 } });
    const first = await hub.publish({ topics: "chat", data: "1" });
    const second = await hub.publish({ topics: "chat", data: "2" });
    const resumed = hub.updates({ topics: ["chat"], lastEventId: first.id });
    assert.equal(await resumed.earliest, false);
    assert.equal((await resumed.next()).value, second);
    resumed.close();
    await hub.publish({ topics: "chat", data: "3" });
    const lost = hub.updates({ topics: ["chat"], lastEventId: first.id });
    assert.equal(await lost.earliest, true);
    const live = await hub.publish({ topics: "chat", data: "4" });
    assert.equal((await lost.next()).value, live, "no partial replay: live updates only");
    lost.close();
  });

  test("ends quietly when its signal aborts, and when the hub closes", async () => {
    hub = createHub({ keepAliveMs: 0 });
    const aborted = new AbortController();
    const updates = hub.updates({ topics: ["chat"], signal: aborted.signal });
    const pending = updates.next();
    aborted.abort();
    assert.deepEqual(await pending, { value: undefined, done: true });
    const other = hub.updates({ topics: ["chat"] });
    const waiting = other.next();
    await hub.close();
    assert.equal((await waiting).done, true);
  });

  test("throws CRIER_ERR_OVERFLOW to a consumer that falls behind, holding no more than its bound", async () => {
    hub = createHub({ keepAliveMs: 0, queue: { maxEvents: 4 } });
    const updates = hub.updates({ topics: ["chat"], highWaterMark: 2 });
    const first = await hub.publish({ topics: "chat", data: "0" });
    assert.equal((await updates.next()).value, first);
    for (let i = 1; i <= 20 && hub.stats.subscribers > 0; i++) {
      await hub.publish({ topics: "chat", data: String(i) });
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(hub.stats.evicted, 1);
    await assert.rejects(updates.next(), (err) => {
      assert.ok(isCrierError(err, "CRIER_ERR_OVERFLOW"));
      assert.match(err.message, new RegExp(`lastEventId "${first.id}"`));
      return true;
    });
    assert.equal((await updates.next()).done, true);
  });

  test("refuses bad options with a CrierError", () => {
    hub = createHub({ keepAliveMs: 0 });
    for (const options of [
      undefined,
      { topics: ["chat"], highWaterMark: 0 },
      { topics: ["chat"], signal: {} },
    ]) {
      assert.throws(
        () => hub.updates(options as never),
        (err) => isCrierError(err, "CRIER_ERR_INVALID_OPTION"),
      );
    }
  });

  test("a consumer backed up when the hub closes gets what it holds, then the loop ends", async () => {
    hub = createHub({ keepAliveMs: 0 });
    const updates = hub.updates({ topics: ["t"], highWaterMark: 4 });
    await updates.earliest;
    for (let i = 0; i < 10; i++) {
      await hub.publish({ topics: "t", data: `${i}` });
      await new Promise((resolve) => setTimeout(resolve, 10)); // a flush: the consumer fills up
    }
    await hub.close();
    const got: string[] = [];
    for await (const update of updates) got.push(update.data);
    assert.ok(got.length >= 4, `${got.length} handed out`);
    assert.deepEqual(
      got,
      Array.from({ length: got.length }, (_, i) => `${i}`),
    );
  });

  test("settles every next() asked for at once", async () => {
    hub = createHub({ keepAliveMs: 0 });
    const updates = hub.updates({ topics: ["t"] });
    await updates.earliest;
    const first = updates.next();
    const second = updates.next();
    await hub.publish({ topics: "t", data: "one" });
    await hub.publish({ topics: "t", data: "two" });
    assert.deepEqual(
      (await Promise.all([first, second])).map((r) => r.value?.data),
      ["one", "two"],
    );
    const third = updates.next();
    updates.close();
    assert.equal((await third).done, true);
  });
});
