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

  test("a node that falls behind the trimmed stream ends its streams, and its clients resume from earliest", async () => {
    const trimmed = `${prefix}-trim`;
    const args = ["--redis-max-len", "100"];
    const [a, b] = await Promise.all([startHub(trimmed, { args }), startHub(trimmed, { args })]);
    const client = new SseClient("feed");
    clients.push(client);
    try {
      await client.connect(b.url);
      const sent: string[] = [];
      const post = async (data: string) => {
        const result = await publish(a.url, { topic: "feed", data });
        assert.equal(result.status, 200, result.body);
        sent.push(data);
      };
      for (let i = 1; i <= 20; i++) await post(`h${i}`);
      await waitFor(() => client.data.length === 20, 10_000, "the first updates on B");
      b.child.kill("SIGSTOP");
      try {
        // Four times the stream's length: what B last delivered, and what followed it, is trimmed.
        for (let i = 21; i <= 400; i++) await post(`h${i}`);
      } finally {
        b.child.kill("SIGCONT");
      }
      await post("h401");
      await waitFor(() => client.ends > 0 || client.data.includes("h401"), 15_000, "B to read on");
      assert.equal(
        client.ends,
        1,
        `the stream was ended, not continued past a gap: ${client.data}`,
      );
      // (h21 may be in B's socket already, an answer to the read under way when it stopped.)
      assert.ok(client.data.length <= 21, `${client.data.length} updates`);
      assert.deepEqual(client.data, sent.slice(0, client.data.length), "no gap on that stream");
      assert.ok(
        b.log.join("").includes("Redis trimmed updates before this node read them"),
        "the gap is logged",
      );
      await client.connect(b.url);
      assert.equal(client.resumedFrom, "earliest", "the client is told it may have missed updates");
      await post("after");
      await waitFor(() => client.data.at(-1) === "after", 10_000, "a later update");
    } finally {
      b.child.kill("SIGCONT");
      await deletePrefix(trimmed);
    }
  });
});
