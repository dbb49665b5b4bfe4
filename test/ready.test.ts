import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RedisBackplane } from "../src/backplane/redis.ts";
import { isCrierError } from "../src/errors.ts";
import { createHub } from "../src/hub.ts";

describe("hub.ready()", () => {
  test("rejects with CRIER_ERR_UNAVAILABLE when the backplane cannot start within readyTimeoutMs", async () => {
    // Port 1: nothing listens, every connection is refused and retried.
    const hub = createHub({
      backplane: new RedisBackplane({ url: "redis://127.0.0.1:1" }),
      readyTimeoutMs: 300,
    });
    const started = Date.now();
    try {
      await assert.rejects(hub.ready(), (err: unknown) => {
        assert.ok(isCrierError(err, "CRIER_ERR_UNAVAILABLE"), String(err));
        assert.match((err as Error).message, /did not start within 300 ms/);
        return true;
      });
      // Far above the bound, on a shared machine: only that it does not wait forever.
      assert.ok(Date.now() - started < 20_000);
    } finally {
      await hub.close();
    }
  });

  test("resolves at once for the in-memory backplane, and refuses a negative bound", async () => {
    await createHub({ keepAliveMs: 0 }).ready();
    assert.throws(
      () => createHub({ readyTimeoutMs: -1 }),
      (err: unknown) => isCrierError(err, "CRIER_ERR_INVALID_OPTION"),
    );
  });
});
