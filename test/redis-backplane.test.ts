import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Redis } from "ioredis";
import { loadIoredis, RedisBackplane, type RedisBackplaneOptions } from "../src/backplane/redis.ts";
import { isCrierError } from "../src/errors.ts";
import { keyBase } from "../src/history/redis-keys.ts";
import { createHub } from "../src/hub.ts";
import type { Update } from "../src/update.ts";
import { until } from "./helpers.ts";
import { deletePrefix, REDIS_URL, redisSkipReason, uniquePrefix } from "./redis-harness.ts";

const skip = await redisSkipReason("redis-backplane (the Redis backplane as a library)");

const fields = (data: string, id?: string) => ({ topics: ["t"], data, id, private: false });

/** Every update of a replay, its pages read to the end; `undefined` when the id is unknown. */
async function replayAll(backplane: RedisBackplane, id: string): Promise<Update[] | undefined> {
  const replay = await backplane.replay(id);
  if (replay === undefined) return undefined;
  const all = [...replay.updates];
  for (let page = await replay.more?.(); page !== undefined && page.length > 0; ) {
    all.push(...page);
    page = await replay.more?.();
  }
  return all;
}

describe("the crier-hub/redis entry point", () => {
  test("without ioredis installed, says to install it with a typed error", () => {
    const missing = (id: string) => {
      throw Object.assign(new Error(`Cannot find module '${id}'`), { code: "MODULE_NOT_FOUND" });
    };
    assert.throws(
      () => loadIoredis(missing),
      (err) =>
        isCrierError(err, "CRIER_ERR_MISSING_DEPENDENCY") &&
        /npm install ioredis/.test(err.message),
    );
  });

  test("publish fails fast with CRIER_ERR_UNAVAILABLE when Redis cannot be reached", async () => {
    const backplane = new RedisBackplane({ url: "redis://127.0.0.1:1", prefix: "unused:" });
    void backplane.start(() => {});
    const start = performance.now();
    await assert.rejects(backplane.publish(fields("x")), (err) =>
      isCrierError(err, "CRIER_ERR_UNAVAILABLE"),
    );
    assert.ok(performance.now() - start < 2000);
    await assert.rejects(Promise.resolve(backplane.replay("earliest")), (err) =>
      isCrierError(err, "CRIER_ERR_UNAVAILABLE"),
    );
    await backplane.close();
  });
});

describe("the Redis backplane", { skip, timeout: 30_000 }, () => {
  const prefixes: string[] = [];
  const backplanes: RedisBackplane[] = [];
  after(async () => {
    await Promise.all(backplanes.map((b) => b.close()));
    await Promise.all(prefixes.map((p) => deletePrefix(p)));
  });

  async function open(options: RedisBackplaneOptions = {}) {
    const prefix = uniquePrefix("backplane");
    prefixes.push(prefix);
    const delivered: Update[] = [];
    const backplane = new RedisBackplane({ url: REDIS_URL, prefix, ...options });
    backplanes.push(backplane);
    await backplane.start((update) => delivered.push(update));
    return { backplane, delivered, prefix };
  }

  test("replays more than one page of the stream, in order, from earliest and from an id", async () => {
    const { backplane, delivered } = await open();
    const ids: string[] = [];
    // In batches of 50: 1,300 commands at once can outlast the 1.5 s command timeout on a
    // loaded machine, which is not what this test is about.
    for (let batch = 0; batch < 26; batch++) {
      const published = Array.from({ length: 50 }, (_, i) =>
        backplane.publish(fields(`${batch * 50 + i}`)),
      );
      for (const update of await Promise.all(published)) ids.push(update.id);
    }
    // Replays stop at what this node's tail has delivered: wait for all of it.
    await until(() => delivered.length >= ids.length, "every update delivered", 20_000);
    const all = await replayAll(backplane, "earliest");
    assert.deepEqual(
      all?.map((u) => u.id),
      ids,
    );
    const rest = await replayAll(backplane, ids[99] as string);
    assert.deepEqual(
      rest?.map((u) => u.id),
      ids.slice(100),
    );
  });

  test("hands out a replay in pages, and replays of the same range share their updates", async () => {
    const { backplane, delivered } = await open({ replayPageSize: 100, replayConcurrency: 2 });
    const ids: string[] = [];
    for (let batch = 0; batch < 5; batch++) {
      const published = Array.from({ length: 50 }, (_, i) =>
        backplane.publish(fields(`${batch * 50 + i}`)),
      );
      for (const update of await Promise.all(published)) ids.push(update.id);
    }
    await until(() => delivered.length >= ids.length, "every update delivered", 20_000);
    // More replays at once than there are read slots: they wait, none fails.
    const replays = await Promise.all(
      Array.from({ length: 6 }, () => backplane.replay(ids[9] as string)),
    );
    const [first, second] = replays;
    assert.ok(first?.more !== undefined && second?.more !== undefined, "pages come from more()");
    const pages = [];
    for (let page = await first.more(); page.length > 0; page = await first.more()) {
      pages.push(page.map((u) => u.id));
    }
    assert.deepEqual(pages, [ids.slice(10, 110), ids.slice(110, 210), ids.slice(210)]);
    const [shared] = await second.more();
    assert.equal(shared?.id, ids[10]);
    assert.ok(
      shared === (await replayAll(backplane, ids[9] as string))?.[0],
      "one decoded update, shared by replays of the same range",
    );
    // A page is cut to the bytes asked for, never below one update.
    const third = replays[2];
    const one = await third?.more?.(1);
    assert.deepEqual(
      one?.map((u) => u.id),
      [ids[10]],
    );
    // Ids differ in length (a position's sequence gains a digit), so the budget is the sum of
    // the next two frames, not twice the first.
    const all = (await replayAll(backplane, ids[9] as string)) ?? [];
    const budget = (all[1]?.bytes.length ?? 0) + (all[2]?.bytes.length ?? 0);
    const two = await third?.more?.(budget);
    assert.deepEqual(
      two?.map((u) => u.id),
      [ids[11], ids[12]],
    );
    assert.deepEqual(await first.more(), [], "and stays complete");
  });

  test("refuses the next page of a replay whose position was trimmed away meanwhile", async () => {
    const { backplane, delivered, prefix } = await open({ replayPageSize: 50 });
    const ids: string[] = [];
    for (let batch = 0; batch < 4; batch++) {
      const published = Array.from({ length: 50 }, (_, i) =>
        backplane.publish(fields(`${batch * 50 + i}`)),
      );
      for (const update of await Promise.all(published)) ids.push(update.id);
    }
    await until(() => delivered.length >= ids.length, "every update delivered", 20_000);
    const replay = await backplane.replay(ids[0] as string);
    const page = await replay?.more?.();
    assert.deepEqual(
      page?.map((u) => u.id),
      ids.slice(1, 51),
    );
    const redis = new Redis(REDIS_URL);
    try {
      await redis.xtrim(`${keyBase(prefix)}stream`, "MAXLEN", 10);
    } finally {
      redis.disconnect();
    }
    // The entries after the replay's position may be gone: no page rather than a silent gap.
    await assert.rejects(Promise.resolve(replay?.more?.()), /trimmed past this replay/);
  });

  test("keeps the stream and the publisher-id index bounded, and forgets trimmed ids", async () => {
    const { backplane, prefix } = await open({ maxLen: 10 });
    const ids: string[] = [];
    for (let i = 0; i < 400; i++) {
      const update = await backplane.publish(fields(`${i}`, i % 2 === 0 ? `p${i}` : undefined));
      ids.push(update.id);
    }
    const redis = new Redis(REDIS_URL);
    try {
      // MAXLEN ~ trims whole stream nodes (100 entries by default), never below the bound.
      const length = await redis.xlen(`${keyBase(prefix)}stream`);
      assert.ok(length >= 10 && length <= 110, `stream length ${length}`);
      const indexed = await redis.hlen(`${keyBase(prefix)}ids`);
      assert.ok(indexed <= length, `${indexed} publisher ids indexed`);
    } finally {
      redis.disconnect();
    }
    assert.equal(await backplane.replay(ids[0] as string), undefined);
    assert.equal(await backplane.replay("p0"), undefined);
    const recent = await replayAll(backplane, ids[394] as string);
    assert.deepEqual(
      recent?.map((u) => u.id),
      ids.slice(395),
    );
    // A trimmed publisher id may be used again.
    assert.equal((await backplane.publish(fields("again", "p0"))).id, "p0");
  });

  test("trims by age", async () => {
    const { backplane, prefix } = await open({ maxLen: 100_000, maxAgeMs: 300 });
    const first = await backplane.publish(fields("old"));
    for (let i = 0; i < 250; i++) await backplane.publish(fields(`${i}`));
    await new Promise((resolve) => setTimeout(resolve, 400));
    await backplane.publish(fields("new"));
    const redis = new Redis(REDIS_URL);
    try {
      assert.ok((await redis.xlen(`${keyBase(prefix)}stream`)) < 252);
    } finally {
      redis.disconnect();
    }
    assert.equal(await backplane.replay(first.id), undefined);
  });

  test("refuses a duplicate publisher id and one of the hub's own form", async () => {
    const { backplane } = await open();
    const generated = await backplane.publish(fields("a"));
    await backplane.publish(fields("b", "mine"));
    await assert.rejects(backplane.publish(fields("c", "mine")), (err) =>
      isCrierError(err, "CRIER_ERR_DUPLICATE_ID"),
    );
    assert.match(generated.id, /^#[0-9a-f]+:\d+-\d+$/);
    const [epoch] = generated.id.split(":");
    await assert.rejects(backplane.publish(fields("d", `${epoch}:1-0`)), (err) =>
      isCrierError(err, "CRIER_ERR_DUPLICATE_ID"),
    );
  });

  test("delivers its own publishes at their acknowledgement when nothing can come between", async () => {
    const { backplane, delivered } = await open();
    const published: Update[] = [];
    // Bursts of publishes in flight at once: the acknowledgements come back together, each
    // right after the last entry delivered here, and ahead of the tail reading them back.
    for (let burst = 0; burst < 3; burst++) {
      published.push(
        ...(await Promise.all(
          Array.from({ length: 50 }, (_, i) => backplane.publish(fields(`${i}`))),
        )),
      );
    }
    await until(() => delivered.length >= 150, "150 deliveries");
    const { early, kept } = backplane.ownDelivered;
    assert.ok(early > 0, `${early} delivered early`);
    // In the stream's order, once each; those delivered early or kept are the very updates the
    // publishes resolved with (not decoded again).
    const stored = (await replayAll(backplane, "earliest"))?.map((u) => u.id);
    assert.deepEqual(
      delivered.map((u) => u.id),
      stored,
    );
    const mine = new Set(published);
    assert.equal(delivered.filter((u) => mine.has(u)).length, early + kept);
  });

  test("delivers in stream order and replays only what this node has delivered", async () => {
    const { backplane, delivered } = await open();
    const published = [];
    for (let i = 0; i < 20; i++) published.push((await backplane.publish(fields(`${i}`))).id);
    const replay = await backplane.replay("earliest");
    const replayed = replay?.updates.map((u) => u.id) ?? [];
    // The replay stops where the tail is: the rest is still on its way, live.
    assert.deepEqual(replayed, published.slice(0, replayed.length));
    assert.deepEqual(
      delivered.slice(0, replayed.length).map((u) => u.id),
      replayed,
    );
    await until(() => delivered.length >= 20, "20 deliveries");
    assert.deepEqual(
      delivered.map((u) => u.id),
      published,
    );
    assert.equal(backplane.lastEventId(), published.at(-1));
    assert.deepEqual(await backplane.replay(published.at(-1) as string), { updates: [] });
  });

  // Anything may write to the engine. An entry no publisher could have stored (topics missing or
  // not strings, an id with a control character or of the hub's own form, `p` other than 1) used
  // to reach subscribers' matching and crashed a resume past it: it is skipped wherever it is
  // read, and said so.
  test("skips entries no publisher could have stored, live and in a replay, and says so", async () => {
    const { backplane, delivered, prefix } = await open();
    const hub = createHub({ backplane, keepAliveMs: 0 });
    const skipped: string[] = [];
    backplane.on("skip", (position) => skipped.push(position));
    const a = await hub.publish({ topics: "https://ex.com/a", data: "a" });
    const epoch = /^#([^:]+):/.exec(a.id)?.[1] as string;
    const redis = new Redis(REDIS_URL);
    const forged = [
      { d: "no topics" },
      { t: 5, d: "topics a number" },
      { t: [1], d: "a topic a number" },
      { t: ["https://ex.com/f"], d: "control in id", i: "bad\u0001id" },
      { t: ["https://ex.com/f"], d: "reserved id", i: "earliest" },
      { t: ["https://ex.com/f"], d: "hub's own id", i: "#deadbeef0000:1-0" },
      { t: ["https://ex.com/f"], d: "p true", p: true },
      { t: ["https://ex.com/f"], d: "retry out of range", r: -1 },
    ];
    try {
      for (const payload of forged) {
        await redis.xadd(`${keyBase(prefix)}stream`, "*", "e", epoch, "u", JSON.stringify(payload));
      }
    } finally {
      redis.disconnect();
    }
    const b = await hub.publish({ topics: "https://ex.com/b", data: "b" });
    await until(() => delivered.length >= 2 && skipped.length >= forged.length, "b and the skips");
    assert.deepEqual(
      delivered.map((u) => u.data),
      ["a", "b"],
    );
    // A resume past them, with a template (whose matching threw on a topic that is no string).
    const resumed = hub.updates({ topics: ["https://ex.com/{x}"], lastEventId: a.id });
    assert.equal(await resumed.earliest, false);
    const first = await resumed.next();
    assert.equal(first.value?.id, b.id);
    resumed.close();
    assert.deepEqual(
      (await replayAll(backplane, a.id))?.map((u) => u.id),
      [b.id],
    );
    await hub.close();
  });
});
