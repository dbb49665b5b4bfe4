/**
 * A reader whose one XREAD reply outgrows Redis's output buffer limit for clients: Redis drops
 * the connection, and reading the same batch again would fail forever. The reader must shrink
 * its reads until they fit and keep making progress.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, describe, test } from "node:test";
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

describe("a read larger than Redis lets a client receive", { skip, timeout: 90_000 }, () => {
  let server: ChildProcess | undefined;
  const clients: SseClient[] = [];
  after(async () => {
    for (const client of clients) client.close();
    await stopAllHubs();
    server?.kill("SIGKILL");
  });

  test("shrinks its reads until they fit and delivers every update", async () => {
    const redis = await startRedis();
    server = redis.child;
    const redisUrl = `redis://127.0.0.1:${redis.port}`;
    const admin = new Redis(redisUrl);
    // 64 KiB: 300 updates of 1 KiB cannot come back in one reply.
    await admin.config("SET", "client-output-buffer-limit", "normal 65536 65536 0");
    await admin.quit();
    const prefix = uniquePrefix("bigread");
    const [a, b] = await Promise.all([
      startHub(prefix, { redisUrl }),
      startHub(prefix, { redisUrl }),
    ]);
    const reader = new SseClient("big");
    clients.push(reader);
    await reader.connect(a.url);

    // A's reader is stopped while the backlog builds, so its next read asks for all of it.
    a.child.kill("SIGSTOP");
    const ids: string[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        const result = await publish(b.url, { topic: "big", data: `${i}:${"x".repeat(1024)}` });
        assert.equal(result.status, 200, result.body);
        ids.push(result.body);
      }
    } finally {
      a.child.kill("SIGCONT");
    }
    await waitFor(() => reader.ids.length >= 300, 30_000, "all 300 updates on A");
    assert.deepEqual(reader.ids, ids);
  });
});
