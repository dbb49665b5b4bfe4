import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  CuttableProxy,
  deletePrefix,
  REDIS_URL,
  redisSkipReason,
  startHub,
  stopAllHubs,
  uniquePrefix,
} from "./redis-harness.ts";

const skip = await redisSkipReason("readyz (Redis cut and restored)");

/** Polls `/readyz` until it answers `status`; resolves with how long that took. */
async function readyzBecomes(mercureUrl: string, status: number, ms: number): Promise<number> {
  const start = Date.now();
  while ((await readyz(mercureUrl)) !== status) {
    if (Date.now() - start > ms) throw new Error(`/readyz did not answer ${status} in ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - start;
}

async function metrics(mercureUrl: string): Promise<string> {
  return (await fetch(new URL("/metrics", mercureUrl))).text();
}

async function readyz(mercureUrl: string): Promise<number> {
  const res = await fetch(new URL("/readyz", mercureUrl));
  await res.arrayBuffer();
  return res.status;
}

describe("/readyz follows the backplane", { skip, timeout: 60_000 }, () => {
  const prefix = uniquePrefix("readyz");
  const proxy = new CuttableProxy(new URL(REDIS_URL));

  after(async () => {
    await stopAllHubs();
    await proxy.cut();
    await deletePrefix(prefix);
  });

  test("answers 503 within seconds of Redis going away and 200 within seconds of its return", async () => {
    await proxy.open();
    const hub = await startHub(prefix, {
      redisUrl: `redis://127.0.0.1:${proxy.port}`,
      args: ["--metrics"],
    });
    assert.equal(await readyz(hub.url), 200);
    const health = await fetch(new URL("/healthz", hub.url));
    assert.equal(health.status, 200);
    await health.arrayBuffer();

    await proxy.cut();
    await readyzBecomes(hub.url, 503, 5000);
    assert.match(await metrics(hub.url), /^crier_backplane_up 0$/m);
    const down = await fetch(new URL("/healthz", hub.url));
    assert.equal(down.status, 200, "liveness does not depend on Redis");
    await down.arrayBuffer();

    await proxy.open();
    await readyzBecomes(hub.url, 200, 5000);
    assert.match(await metrics(hub.url), /^crier_backplane_up 1$/m);
  });
});
