/**
 * A reader whose last delivered entry is trimmed on its own (`--redis-max-age`, after a quiet
 * spell longer than it) while its connection is down: the entry it reads next was appended
 * right after that one, so nothing was missed and its subscribers must not be sent back.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import {
  hasRedisServer,
  publish,
  SseClient,
  startHub,
  startRedis,
  stopAllHubs,
  uniquePrefix,
  waitFor,
} from "./redis-harness.ts";

const skip = hasRedisServer() ? false : "redis-server is not installed";

describe("a reader whose last entry was trimmed alone", { skip, timeout: 60_000 }, () => {
  let server: ChildProcess | undefined;
  const clients: SseClient[] = [];
  after(async () => {
    for (const client of clients) client.close();
    await stopAllHubs();
    server?.kill("SIGKILL");
  });

  test("goes on after a reconnection without a gap, and its subscribers stay", async () => {
    const redis = await startRedis();
    server = redis.child;
    const redisUrl = `redis://127.0.0.1:${redis.port}`;
    const prefix = uniquePrefix("alone");
    const args = ["--redis-max-age", "1000"];
    const [a, b] = await Promise.all([
      startHub(prefix, { redisUrl, args }),
      startHub(prefix, { redisUrl, args }),
    ]);
    const reader = new SseClient("t");
    clients.push(reader);
    await reader.connect(a.url);
    // 6 KB: an entry alone in its stream node, which trimming then removes whole.
    const x = await publish(a.url, { topic: "t", data: "x".repeat(6000) });
    assert.equal(x.status, 200, x.body);
    await waitFor(() => reader.ids.length === 1, 10_000, "the first update");
    await sleep(1300); // past the max age
    // Cut every reader's connection: they reconnect and read on from their last entry.
    const admin = new Redis(redisUrl);
    try {
      const list = (await admin.client("LIST")) as string;
      for (const line of list.split("\n").filter((l) => /\bcmd=xread\b/.test(l))) {
        await admin.client("KILL", "ID", /\bid=(\d+)/.exec(line)?.[1] as string);
      }
    } finally {
      admin.disconnect();
    }
    const y = await publish(b.url, { topic: "t", data: "y" });
    assert.equal(y.status, 200, y.body);
    await waitFor(() => reader.ids.length >= 2 || reader.ends > 0, 10_000, "the next update");
    assert.equal(reader.ends, 0, "the stream was not ended");
    assert.deepEqual(reader.ids, [x.body, y.body]);
    assert.ok(!a.log.join("").includes("Redis trimmed updates"), "no gap reported");
  });
});
