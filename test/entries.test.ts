import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";

const ROOT = new URL("..", import.meta.url);

/** Every package a fresh process loads to import `entry` and run `use` (ESM and CommonJS alike). */
function packagesLoadedBy(entry: string, use = ""): Set<string> {
  const dir = mkdtempSync(join(tmpdir(), "crier-entry-"));
  const log = join(dir, "load.log");
  try {
    const script = `
      import { createRequire } from "node:module";
      import { appendFileSync } from "node:fs";
      const entry = await import("./src/${entry}");
      ${use}
      const cache = Object.keys(createRequire(import.meta.url).cache);
      appendFileSync(process.env.LOAD_LOG, cache.join("\\n") + "\\n");`;
    const run = spawnSync(
      process.execPath,
      [
        "--import",
        "./test/fixtures/load-log.mjs",
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        script,
      ],
      { cwd: ROOT, encoding: "utf8", timeout: 30_000, env: { ...process.env, LOAD_LOG: log } },
    );
    assert.equal(run.status, 0, run.stderr);
    const packages = new Set<string>();
    for (const line of readFileSync(log, "utf8").split("\n")) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(line);
      if (match?.[1] !== undefined) packages.add(match[1]);
    }
    return packages;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("entry points", () => {
  test("importing the core loads no token, selector-engine or Redis package", () => {
    const loaded = packagesLoadedBy("index.ts");
    for (const name of [
      "jose",
      "re2js",
      "urlpattern-polyfill",
      "ioredis",
      "lmdb",
      "prom-client",
      "pino",
    ]) {
      assert.ok(!loaded.has(name), `crier loaded ${name}`);
    }
  });

  test("crier-hub/fetch loads no token, selector-engine or Redis package", () => {
    const loaded = packagesLoadedBy("adapters/fetch.ts");
    for (const name of ["jose", "re2js", "urlpattern-polyfill", "ioredis"]) {
      assert.ok(!loaded.has(name), `crier-hub/fetch loaded ${name}`);
    }
  });

  test("crier-hub/mercure loads jose; crier-hub/redis loads ioredis once a backplane is made, never jose", () => {
    const mercure = packagesLoadedBy("mercure/index.ts");
    assert.ok(mercure.has("jose"));
    assert.ok(!mercure.has("ioredis"));
    assert.ok(!packagesLoadedBy("backplane/redis.ts").has("ioredis"));
    const redis = packagesLoadedBy("backplane/redis.ts", "new entry.RedisBackplane({});");
    assert.ok(redis.has("ioredis"));
    assert.ok(!redis.has("jose"));
  });

  test("crier-hub/file loads lmdb once a backplane is made, and no Redis or token package", () => {
    assert.ok(!packagesLoadedBy("backplane/file.ts").has("lmdb"));
    const file = packagesLoadedBy(
      "backplane/file.ts",
      `const { mkdtempSync } = await import("node:fs");
      const dir = mkdtempSync((await import("node:os")).tmpdir() + "/crier-entry-file-");
      await new entry.FileBackplane({ path: dir + "/history" }).close();`,
    );
    assert.ok(file.has("lmdb"));
    for (const name of ["ioredis", "jose"]) assert.ok(!file.has(name), name);
  });

  test("crier-hub/nats loads the NATS client once a backplane is made, never jose or ioredis", () => {
    const nats = ["@nats-io/transport-node", "@nats-io/jetstream", "@nats-io/nats-core"];
    const imported = packagesLoadedBy("backplane/nats.ts");
    for (const name of nats) assert.ok(!imported.has(name), `importing it loaded ${name}`);
    const made = packagesLoadedBy(
      "backplane/nats.ts",
      "await new entry.NatsBackplane({}).close();",
    );
    assert.ok(made.has("@nats-io/transport-node"));
    for (const name of ["jose", "ioredis"]) assert.ok(!made.has(name), name);
    for (const entry of ["index.ts", "adapters/fetch.ts", "mercure/index.ts"]) {
      const loaded = packagesLoadedBy(entry);
      for (const name of nats) assert.ok(!loaded.has(name), `${entry} loaded ${name}`);
    }
  });

  test("crier/metrics loads prom-client, and neither jose, ioredis nor pino", () => {
    const metrics = packagesLoadedBy("ops/metrics.ts");
    assert.ok(metrics.has("prom-client"));
    for (const name of ["jose", "ioredis", "pino"]) assert.ok(!metrics.has(name), name);
  });

  test("crier/mercure loads neither prom-client nor pino", () => {
    const mercure = packagesLoadedBy("mercure/index.ts");
    assert.ok(!mercure.has("prom-client"));
    assert.ok(!mercure.has("pino"));
  });
});
