import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import { openStream, sleep, startHub } from "./helpers.ts";

describe("keep-alive", () => {
  test("sends a comment to every subscriber at the configured interval, from one hub-wide timer", async () => {
    mock.timers.enable({ apis: ["setInterval"] });
    const t = await startHub({ keepAliveMs: 5000 });
    const streams = await Promise.all([
      openStream(`${t.url}?topic=a`),
      openStream(`${t.url}?topic=b`),
    ]);
    try {
      const settle = async (comments: number) => {
        for (let i = 0; i < 200 && streams.some((s) => s.comments.length < comments); i++)
          await sleep(5);
        await sleep(20); // and nothing more arrives
      };
      await settle(1); // the comment that flushes the headers at connect
      mock.timers.tick(4999);
      await settle(1);
      assert.deepEqual(
        streams.map((s) => s.comments.length),
        [1, 1],
      );
      mock.timers.tick(1);
      await settle(2);
      assert.deepEqual(
        streams.map((s) => s.comments.length),
        [2, 2],
      );
      mock.timers.tick(10_000);
      await settle(4);
      assert.deepEqual(
        streams.map((s) => s.comments.length),
        [4, 4],
      );
      assert.equal(streams[0]?.raw(), ":\n:\n:\n:\n");
      assert.deepEqual(
        streams.map((s) => s.events.length),
        [0, 0],
      );
    } finally {
      for (const s of streams) s.close();
      await t.close();
      mock.timers.reset();
    }
  });

  test("can be turned off: with keepAliveMs 0 nothing but the opening comment is ever sent", async () => {
    mock.timers.enable({ apis: ["setInterval"] });
    const t = await startHub({ keepAliveMs: 0 });
    const s = await openStream(`${t.url}?topic=a`);
    try {
      await s.waitForComment();
      mock.timers.tick(3_600_000);
      await sleep(50);
      assert.equal(s.raw(), ":\n");
    } finally {
      s.close();
      await t.close();
      mock.timers.reset();
    }
  });
});
