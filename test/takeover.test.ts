import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { socketTakeOver, takeOverAvailable } from "../src/adapters/socket-sink.ts";
import { openStream, publish, startHub, type TestHub } from "./helpers.ts";

describe("taking a subscriber's socket over from node:http", () => {
  let t: TestHub | undefined;
  afterEach(async () => {
    socketTakeOver.enabled = true;
    await t?.close();
  });

  test(`is active on this Node (${process.version}): a Node upgrade that disables it fails here`, async () => {
    assert.equal(takeOverAvailable(), true, "node:http's _http_common.freeParser is gone");
    t = await startHub({ keepAliveMs: 0 });
    const s = await openStream(`${t.url}?topic=a`);
    try {
      await s.waitForComment();
      assert.deepEqual(t.hub.stats.sinks, { "node-socket": 1 });
      // The taken-over stream is close-delimited: no chunked framing.
      assert.equal(s.headers["transfer-encoding"], undefined);
    } finally {
      s.close();
    }
  });

  test("falls back to the ServerResponse when the socket cannot be taken, and the stream still works", async () => {
    socketTakeOver.enabled = false;
    t = await startHub({ keepAliveMs: 0 });
    const s = await openStream(`${t.url}?topic=a`);
    try {
      await s.waitForComment();
      assert.equal(s.headers["transfer-encoding"], "chunked");
      const sent = await publish(
        t.url,
        { topic: "a", data: "through the response" },
        t.publisherToken,
      );
      assert.equal(sent.status, 200);
      const [event] = await s.waitForEvents(1);
      assert.deepEqual([event?.id, event?.data], [sent.body, "through the response"]);
      assert.deepEqual(t.hub.stats.sinks, { "node-fallback": 1 });
      s.close();
      await s.ended;
    } finally {
      s.close();
    }
  });
});
