import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SentTogether } from "../src/history/sent-together.ts";

/**
 * A client that, like the NATS client, queues what it is given and flushes it on a microtask
 * scheduled by the first request after a flush: each flush is one write to its socket.
 */
class FakeClient {
  readonly writes: string[][] = [];
  #pending: string[] = [];

  request(body: string): Promise<string> {
    if (this.#pending.length === 0) {
      queueMicrotask(() => {
        this.writes.push(this.#pending);
        this.#pending = [];
      });
    }
    this.#pending.push(body);
    return Promise.resolve(`ack ${body}`);
  }
}

describe("requests sent together", () => {
  test("requests handed in from separate I/O callbacks of one turn leave in one write, in order", async () => {
    const client = new FakeClient();
    const together = new SentTogether();
    // Each publish is read in its own I/O callback: its microtasks run before the next one's.
    const acks = await new Promise<Promise<string>[]>((resolve) => {
      const sent: Promise<string>[] = [];
      let left = 5;
      for (let i = 0; i < 5; i++) {
        setImmediate(() => {
          // A callback's own microtasks run before the next callback: the flush would too.
          sent.push(together.send(() => client.request(`p${i}`)));
          if (--left === 0) resolve(sent);
        });
      }
    });
    assert.deepEqual(await Promise.all(acks), ["ack p0", "ack p1", "ack p2", "ack p3", "ack p4"]);
    assert.deepEqual(client.writes, [["p0", "p1", "p2", "p3", "p4"]]);

    // Without it, the same callbacks make one write each.
    const alone = new FakeClient();
    await new Promise<void>((resolve) => {
      let left = 3;
      for (let i = 0; i < 3; i++) {
        setImmediate(() => {
          void alone.request(`p${i}`);
          if (--left === 0) resolve();
        });
      }
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(alone.writes, [["p0"], ["p1"], ["p2"]]);
  });

  test("a request that fails, or throws before it is sent, fails alone", async () => {
    const together = new SentTogether();
    const results = await Promise.allSettled([
      together.send(() => Promise.resolve(1)),
      together.send(() => Promise.reject(new Error("refused"))),
      together.send(() => {
        throw new Error("bad request");
      }),
      together.send(() => Promise.resolve(4)),
    ]);
    assert.deepEqual(
      results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message)),
      [1, "refused", "bad request", 4],
    );
  });

  test("requests handed in after a batch left go in the next one", async () => {
    const client = new FakeClient();
    const together = new SentTogether();
    await together.send(() => client.request("a"));
    await Promise.all([
      together.send(() => client.request("b")),
      together.send(() => client.request("c")),
    ]);
    assert.deepEqual(client.writes, [["a"], ["b", "c"]]);
  });
});
