/**
 * The longest a Mercure event stream stays open (`maxConnectionLifetimeMs`): then it ends, and a
 * real EventSource reconnects with its Last-Event-ID and misses nothing.
 */
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { EventSource } from "eventsource";
import type { CloseReason, Subscription } from "../src/index.ts";
import { publish, sleep, startHub, type TestHub, until } from "./helpers.ts";

describe("the longest a stream stays open", () => {
  let t: TestHub | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  for (const keepAliveMs of [0, 100]) {
    test(`ends a stream after its lifetime (keep-alive ${keepAliveMs} ms: ${keepAliveMs === 0 ? "a timer" : "checked at each keep-alive"}); the EventSource reconnects and misses nothing`, async () => {
      t = await startHub({ keepAliveMs }, { maxConnectionLifetimeMs: 400 });
      const hub = t.hub;
      const opened: number[] = [];
      const ended: [number, CloseReason][] = [];
      hub.on("connect", () => opened.push(Date.now()));
      hub.on("disconnect", (_: Subscription, reason: CloseReason) =>
        ended.push([Date.now(), reason]),
      );
      const started = Date.now();
      const es = new EventSource(`${t.url}?topic=life`);
      const got: string[] = [];
      es.onmessage = (e) => got.push(e.data);
      try {
        await new Promise((resolve) => {
          es.onopen = resolve;
        });
        const first = await publish(
          t.url,
          { topic: "life", data: "first", retry: "100" },
          t.publisherToken,
        );
        assert.equal(first.status, 200);
        await until(() => ended.length >= 1, "the stream to reach its lifetime");
        const [at, reason] = ended[0] as [number, CloseReason];
        assert.equal(reason, "expired");
        // Drawn between 90 % and 100 % of the bound, from the request's arrival.
        assert.ok(at - started >= 360, `ended ${at - started} ms after the request`);
        await publish(t.url, { topic: "life", data: "while away" }, t.publisherToken);
        await until(() => opened.length >= 2, "the EventSource to reconnect");
        await publish(t.url, { topic: "life", data: "after" }, t.publisherToken);
        await until(
          () => got.length >= 3,
          `three events (got ${JSON.stringify(got)}, ${opened.length} opened)`,
        );
        await sleep(50);
        assert.deepEqual(got.slice(0, 3), ["first", "while away", "after"]);
      } finally {
        es.close();
      }
    });
  }

  test("0 keeps a stream open past any lifetime", async () => {
    t = await startHub({ keepAliveMs: 0 }, { maxConnectionLifetimeMs: 0 });
    const reasons: CloseReason[] = [];
    t.hub.on("disconnect", (_: Subscription, reason: CloseReason) => reasons.push(reason));
    const es = new EventSource(`${t.url}?topic=life`);
    try {
      await new Promise((resolve) => {
        es.onopen = resolve;
      });
      await sleep(600);
      assert.deepEqual(reasons, []);
      assert.equal(t.hub.stats.subscribers, 1);
    } finally {
      es.close();
    }
  });
});
