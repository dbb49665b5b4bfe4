/**
 * Resuming on a node whose reader is behind the node the client left: node A is stopped
 * (SIGSTOP) while updates pile up through node B, then continued, and a client that read them
 * all on B resumes on A at once, while A's reader still works through the backlog.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  deletePrefix,
  publish,
  redisSkipReason,
  SseClient,
  startHub,
  stopAllHubs,
  streamIds,
  uniquePrefix,
  waitFor,
} from "./redis-harness.ts";

const skip = await redisSkipReason("redis-lagging-node (resume on a node whose reader is behind)");

describe("resuming on a node whose reader is behind", { skip, timeout: 90_000 }, () => {
  const prefix = uniquePrefix("lagging");
  const clients: SseClient[] = [];
  after(async () => {
    for (const client of clients) client.close();
    await stopAllHubs();
    await deletePrefix(prefix);
  });

  test("delivers nothing at or before the client's cursor again, and everything after it once, in order", async () => {
    const [a, b] = await Promise.all([startHub(prefix), startHub(prefix)]);
    const mover = new SseClient("feed");
    clients.push(mover);
    await mover.connect(b.url);

    a.child.kill("SIGSTOP");
    let sent = 0;
    try {
      // Three reads' worth (512 entries each), so A's reader lags once continued.
      const total = 1500;
      const send = async () => {
        while (sent < total) {
          const i = sent++;
          const result = await publish(b.url, { topic: "feed", data: `${i}` });
          assert.equal(result.status, 200, result.body);
        }
      };
      await Promise.all(Array.from({ length: 16 }, send));
      await waitFor(() => mover.ids.length === total, 20_000, "every update on B");
    } finally {
      a.child.kill("SIGCONT");
    }
    // Resume on A right away, from the last id read on B, and keep publishing meanwhile.
    mover.close();
    await mover.ended();
    await mover.connect(a.url);
    for (let i = 0; i < 20; i++) {
      const result = await publish(b.url, { topic: "feed", data: `late ${i}` });
      assert.equal(result.status, 200, result.body);
    }
    const order = await streamIds(prefix);
    await waitFor(() => mover.ids.length >= order.length, 20_000, "the late updates on A");
    await new Promise((resolve) => setTimeout(resolve, 500)); // and nothing more arrives
    assert.deepEqual(mover.ids, order, "every update exactly once, in the stream's order");
  });
});
