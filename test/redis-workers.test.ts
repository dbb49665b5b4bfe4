import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
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

const skip = await redisSkipReason("redis-workers (crier --workers N over Redis)");

describe("crier --workers", () => {
  test("refuses --workers without --redis, naming the fix", () => {
    const result = spawnSync(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "--workers", "2"],
      {
        cwd: new URL("..", import.meta.url),
        encoding: "utf8",
        timeout: 20_000,
        env: { ...process.env, CRIER_REDIS: "" },
      },
    );
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--workers needs --redis/);
  });

  describe("over Redis", { skip, timeout: 60_000 }, () => {
    const prefix = uniquePrefix("workers");
    const clients: SseClient[] = [];

    after(async () => {
      for (const client of clients) client.close();
      await stopAllHubs();
      await deletePrefix(prefix);
    });

    test("workers on one port share every update, and SIGTERM stops them all with exit 0", async () => {
      // Port 0: the primary picks one free port and every worker shares it.
      const hub = await startHub(prefix, { args: ["--workers", "3"] });
      // Wait for every worker to listen, so the connections below spread over all of them.
      await waitFor(() => hub.log.join("").match(/listening on/g)?.length === 3, 20_000, "workers");
      for (let i = 0; i < 9; i++) {
        const client = new SseClient("jobs");
        await client.connect(hub.url);
        clients.push(client);
      }
      for (let i = 0; i < 30; i++) {
        const result = await publish(hub.url, { topic: "jobs", data: `${i}` });
        assert.equal(result.status, 200, result.body);
      }
      const order = await streamIds(prefix);
      assert.equal(order.length, 30);
      await waitFor(() => clients.every((c) => c.ids.length >= 30), 10_000, "every update");
      for (const client of clients) assert.deepEqual(client.ids, order);

      const code = await hub.stop("SIGTERM");
      assert.equal(code, 0);
      await waitFor(() => clients.every((c) => c.ends === 1), 5000, "streams to end");
    });

    test("replaces every worker that dies, even all of them at once, and exits 0 only on a signal", async () => {
      const hub = await startHub(prefix, { args: ["--workers", "2"] });
      await waitFor(() => hub.log.join("").match(/listening on/g)?.length === 2, 20_000, "workers");
      const workers = execFileSync("pgrep", ["-P", String(hub.child.pid)], { encoding: "utf8" })
        .trim()
        .split("\n")
        .map(Number);
      assert.equal(workers.length, 2);
      for (const pid of workers) process.kill(pid, "SIGKILL");
      await waitFor(
        () => (hub.log.join("").match(/replacing it/g)?.length ?? 0) === 2,
        10_000,
        "the deaths",
      );
      assert.equal(hub.child.exitCode, null, "the primary outlives its workers");
      await waitFor(
        () => hub.log.join("").match(/listening on/g)?.length === 4,
        20_000,
        "replacements",
      );
      // Port 0 again: with no worker left the primary let the old port go, so read the new one.
      const url = [...hub.log.join("").matchAll(/listening on (http:\/\/[^\s"]+)/g)].at(
        -1,
      )?.[1] as string;
      const result = await publish(url, { topic: "jobs", data: "after" });
      assert.equal(result.status, 200, result.body);
      assert.equal(await hub.stop("SIGTERM"), 0);
    });
  });
});
