import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { EventSource } from "eventsource";
import type { Subscription } from "../src/subscriber.ts";
import { openStream, publish, sleep, startHub, type TestHub, until } from "./helpers.ts";

describe("resuming with Last-Event-ID", () => {
  let t: TestHub;
  before(async () => {
    t = await startHub({ history: { maxEvents: 500 } });
  });
  after(() => t.close());

  test("after missing 100 updates, receives exactly those 100 and then live ones", async () => {
    const first = await openStream(`${t.url}?topic=r1`);
    await t.hub.publish({ topics: "r1", data: "seen" });
    const [seen] = await first.waitForEvents(1);
    first.close();
    const missed: string[] = [];
    for (let i = 0; i < 100; i++) {
      missed.push((await t.hub.publish({ topics: "r1", data: `missed ${i}` })).id);
      await t.hub.publish({ topics: "other", data: "not for r1" });
    }
    const again = await openStream(`${t.url}?topic=r1`, { "Last-Event-ID": seen?.id ?? "" });
    try {
      assert.equal(again.headers["last-event-id"], seen?.id);
      const replayed = await again.waitForEvents(100);
      assert.deepEqual(
        replayed.map((e) => e.id),
        missed,
      );
      const live = await t.hub.publish({ topics: "r1", data: "live" });
      const all = await again.waitForEvents(101);
      assert.equal(all[100]?.id, live.id);
      await sleep(50);
      assert.equal(again.events.length, 101, "nothing repeated");
    } finally {
      again.close();
    }
  });

  test("publishes racing a reconnect are neither lost nor duplicated", async () => {
    const total = 2000;
    const received: string[] = [];
    const t = await startHub(); // a history that holds every update of this test
    try {
      const publishing = (async () => {
        for (let i = 0; i < total; i++) {
          await t.hub.publish({ topics: "race", data: String(i) });
          if (i % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      // The publisher starts first, so the first connection asks for everything in the history.
      let lastId = "earliest";
      // Reconnect several times while the publisher runs, each time from the last id received.
      while (received.length < total) {
        const s = await openStream(`${t.url}?topic=race`, { "Last-Event-ID": lastId });
        const want = Math.min(total, received.length + 300);
        const before = received.length;
        try {
          await s.waitForEvents(want - before, 20_000);
        } finally {
          s.close();
        }
        for (const e of s.events.slice(0, want - before)) {
          received.push(e.data);
          lastId = e.id ?? lastId;
        }
      }
      await publishing;
      assert.deepEqual(
        received,
        Array.from({ length: total }, (_, i) => String(i)),
      );
    } finally {
      await t.close();
    }
  });

  test("reads the resume point from lastEventID or last_event_id, the header winning", async () => {
    const a = await t.hub.publish({ topics: "q", data: "a" });
    const b = await t.hub.publish({ topics: "q", data: "b" });
    const c = await t.hub.publish({ topics: "q", data: "c" });
    for (const name of ["lastEventID", "last_event_id"]) {
      const s = await openStream(`${t.url}?topic=q&${name}=${encodeURIComponent(a.id)}`);
      assert.deepEqual(
        (await s.waitForEvents(2)).map((e) => e.data),
        ["b", "c"],
      );
      s.close();
    }
    const s = await openStream(`${t.url}?topic=q&lastEventID=${encodeURIComponent(a.id)}`, {
      "Last-Event-ID": b.id,
    });
    assert.deepEqual(
      (await s.waitForEvents(1)).map((e) => e.id),
      [c.id],
    );
    s.close();
  });

  test("an unknown or evicted id is answered with Last-Event-ID: earliest and nothing replayed", async () => {
    const oldest = await t.hub.publish({ topics: "ev", data: "old" });
    for (let i = 0; i < 500; i++) await t.hub.publish({ topics: "filler", data: String(i) });
    for (const id of ["never-published", oldest.id]) {
      const s = await openStream(`${t.url}?topic=ev`, { "Last-Event-ID": id });
      assert.equal(s.headers["last-event-id"], "earliest");
      const live = await t.hub.publish({ topics: "ev", data: "live" });
      const [first] = await s.waitForEvents(1);
      assert.equal(first?.id, live.id, "the first event is live, not a partial replay");
      s.close();
    }
  });

  test("an EventSource whose connection the server drops reconnects by itself and misses nothing", async () => {
    const connections: Subscription[] = [];
    const collect = (s: Subscription) => connections.push(s);
    t.hub.on("connect", collect);
    const es = new EventSource(`${t.url}?topic=auto`);
    const got: string[] = [];
    es.onmessage = (e) => got.push(e.data);
    try {
      await new Promise((resolve) => {
        es.onopen = resolve;
      });
      await publish(t.url, { topic: "auto", data: "before", retry: "100" }, t.publisherToken);
      await until(() => got.length >= 1, "the first event");
      (connections[0] as Subscription).close();
      await publish(t.url, { topic: "auto", data: "while away" }, t.publisherToken);
      await until(() => connections.length >= 2, "the reconnection");
      await publish(t.url, { topic: "auto", data: "after" }, t.publisherToken);
      await until(() => got.length >= 3, "three events");
      await sleep(50);
      assert.deepEqual(got, ["before", "while away", "after"]);
    } finally {
      es.close();
      t.hub.off("connect", collect);
    }
  });
});
