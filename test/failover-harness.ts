/**
 * What the failover tests share (Sentinel, Cluster): subscribers that resume whenever their node
 * ends their stream, a steady stream of publishes through two hub nodes with the failover in
 * the middle, and the one check of the outcome.
 *
 * The promise checked: every publish was acknowledged (200) or refused (5xx), none waited past
 * the command timeout, publishing resumed, and every subscriber holds the stream in order with
 * no duplicate and no gap, except across a resume answered `earliest` after it had received
 * updates the failover lost (asynchronous replication).
 */
import assert from "node:assert/strict";
import { until } from "./helpers.ts";
import { type HubProcess, publish, SseClient } from "./redis-harness.ts";

/** A subscriber that comes back (with its last id) whenever its node ends its stream. */
export interface Follower {
  readonly client: SseClient;
  /** Where each new connection started (ids received before it) and what the node said. */
  readonly resumes: { at: number; from: string | null }[];
  stop(): Promise<void>;
}

export function follower(hub: HubProcess, topic = "ticks"): Follower {
  const client = new SseClient(topic);
  const resumes: { at: number; from: string | null }[] = [];
  let closed = false;
  const loop = (async () => {
    await client.connect(hub.url);
    for (;;) {
      await client.ended();
      if (closed) return;
      for (let attempt = 0; ; attempt++) {
        try {
          const at = client.ids.length;
          await client.connect(hub.url);
          resumes.push({ at, from: client.resumedFrom });
          break;
        } catch (err) {
          if (attempt > 100) throw err;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  })();
  return {
    client,
    resumes,
    async stop() {
      closed = true;
      client.close();
      await loop.catch(() => {});
    },
  };
}

/** What a run through a failover produced. */
export interface FailoverRun {
  readonly results: { status: number; body: string; ms: number; at: number }[];
  /** Acknowledged publishes after the failover began. */
  readonly okAfter: number;
  readonly failedOverAt: number;
  /** The stream's ids once it settled: what every subscriber must end with. */
  readonly order: string[];
  readonly followers: Follower[];
}

/**
 * Two followers on each hub; a publish every 20 ms alternating between the hubs, `failover()`
 * after the 40th, until 40 more were acknowledged (or a minute passed). Then one more publish
 * through each hub once they settled, so that a subscriber sent back to resume (`earliest`)
 * ends with the stream's end like the others; `order()` reads the stream.
 */
export async function publishThroughFailover(
  hubs: readonly [HubProcess, HubProcess],
  failover: () => Promise<void>,
  order: () => Promise<string[]>,
): Promise<FailoverRun> {
  const followers = hubs.flatMap((hub) => [follower(hub), follower(hub)]);
  await until(() => followers.every((f) => f.client.comments > 0), "every subscriber to open");
  const results: FailoverRun["results"] = [];
  let failedOverAt = 0;
  let okAfter = 0;
  const deadline = Date.now() + 60_000;
  for (let n = 0; okAfter < 40 && Date.now() < deadline; n++) {
    if (n === 40) {
      await failover();
      failedOverAt = Date.now();
    }
    const result = await publish((hubs[n % 2] as HubProcess).url, { topic: "ticks", data: `${n}` });
    results.push({ ...result, at: Date.now() });
    if (n > 40 && result.status === 200) okAfter++;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const hub of hubs) {
    await until(
      async () => (await publish(hub.url, { topic: "ticks", data: "last" })).status === 200,
      "a publish after the failover",
    );
  }
  const ids = await order();
  await until(
    () => followers.every((f) => f.client.ids.at(-1) === ids.at(-1)),
    "every subscriber to reach the stream's end",
  ).catch((err: Error) => {
    const seen = followers.map(
      (f) => `${f.client.ids.length} ids, resumes ${JSON.stringify(f.resumes)}`,
    );
    throw new Error(
      `${err.message}: the stream holds ${ids.length}; subscribers: ${seen.join("; ")}`,
    );
  });
  await new Promise((resolve) => setTimeout(resolve, 200)); // anything extra would show now
  await Promise.all(followers.map((f) => f.stop()));
  return { results, okAfter, failedOverAt, order: ids, followers };
}

/**
 * The promise (see the file's head). The command timeout is 1.5 s; 5 s leaves room for the
 * time a request takes to reach a node on a busy machine.
 */
export function assertConsistent(run: FailoverRun): void {
  const { results, order, followers, okAfter } = run;
  assert.equal(okAfter, 40, "publishing resumed after the failover");
  for (const [n, result] of results.entries()) {
    assert.ok(result.status === 200 || result.status >= 500, `publish ${n}: ${result.status}`);
    assert.ok(result.ms < 5000, `publish ${n} took ${Math.round(result.ms)} ms`);
  }
  const held = new Set(order);
  for (const { client, resumes } of followers) {
    assert.equal(new Set(client.ids).size, client.ids.length, "no duplicate");
    const earliest = resumes.findLast((r) => r.from === "earliest");
    if (earliest === undefined) {
      assert.deepEqual(client.ids, order);
      continue;
    }
    // Before: the stream's beginning, then updates the failover lost; after: the stream's end.
    const before = client.ids.slice(0, earliest.at);
    const kept = before.filter((id) => held.has(id));
    assert.deepEqual(kept, order.slice(0, kept.length));
    assert.ok(kept.length < before.length, "told earliest only after receiving lost updates");
    const rest = client.ids.slice(earliest.at);
    assert.deepEqual(rest, order.slice(order.length - rest.length));
  }
}
