/**
 * The engines the backplane contract runs against: one entry each. Adding an engine is one more
 * entry here (and one more column in docs/engines.md).
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileBackplane } from "../src/backplane/file.ts";
import { LocalBackplane } from "../src/backplane/local.ts";
import { NatsBackplane } from "../src/backplane/nats.ts";
import { RedisBackplane } from "../src/backplane/redis.ts";
import type { Engine } from "./backplane-contract.ts";
import { sleep } from "./helpers.ts";
import { deleteStream, NATS_URL, natsSkipReason, uniqueStream } from "./nats-harness.ts";
import { deletePrefix, REDIS_URL, redisSkipReason, uniquePrefix } from "./redis-harness.ts";

export const memory: Engine = {
  name: "memory",
  namespace: () => "",
  open: (_namespace, bounds) => new LocalBackplane({ maxEvents: bounds?.maxLen }),
  // A new process is the only way to replace the history; its epoch is its start time, a
  // millisecond on at least.
  wipe: () => sleep(2),
  maxNodes: 1,
  lengthSlack: 0,
  unsupported: {
    age: "bounded by count and bytes (`maxEvents`, `maxBytes`), not by age",
    unavailable: "nothing to reach: the history is in the process",
    outage: "nothing to lose: the history is in the process",
  },
};

// Each namespace is a folder of its own; every node opens the one file in it.
export const file: Engine = {
  name: "history file",
  namespace: () => mkdtempSync(join(tmpdir(), "crier-contract-file-")),
  open: (dir, bounds) =>
    new FileBackplane({
      path: join(dir, "history"),
      maxEvents: bounds?.maxLen,
      maxAgeMs: bounds?.maxAgeMs,
      pollMs: 10,
    }),
  // The folder stays (a node may open it again); the file and its lock go, as a deleted file.
  wipe: async (dir) => {
    for (const name of readdirSync(dir)) rmSync(join(dir, name), { force: true });
  },
  lengthSlack: 0,
  unsupported: {
    unavailable: "nothing to reach: the file is on this machine (a full disk answers 503)",
    outage: "nothing to lose: the file is on this machine",
  },
};

export const redis: Engine = {
  name: "Redis",
  address: new URL(REDIS_URL),
  namespace: () => uniquePrefix("contract"),
  open: (prefix, bounds, port) =>
    new RedisBackplane({
      url: port === undefined ? REDIS_URL : `redis://127.0.0.1:${port}`,
      prefix,
      maxLen: bounds?.maxLen,
      maxAgeMs: bounds?.maxAgeMs,
    }),
  unreachable: () => new RedisBackplane({ url: "redis://127.0.0.1:1", prefix: "unused:" }),
  wipe: (prefix) => deletePrefix(prefix),
  // MAXLEN ~ and MINID ~ trim whole stream nodes (100 entries by default).
  lengthSlack: 100,
  unsupported: {},
};

export const nats: Engine = {
  name: "NATS JetStream",
  address: new URL(NATS_URL),
  namespace: () => uniqueStream("contract"),
  open: (stream, bounds, port) =>
    new NatsBackplane({
      url: port === undefined ? NATS_URL : `nats://127.0.0.1:${port}`,
      stream,
      maxLen: bounds?.maxLen,
      maxAgeMs: bounds?.maxAgeMs,
    }),
  unreachable: () => new NatsBackplane({ url: "nats://127.0.0.1:1", stream: "unused" }),
  wipe: (stream) => deleteStream(stream),
  lengthSlack: 0,
  unsupported: {},
};

/** Each engine with the reason it cannot run here, if any. */
export const ENGINES: readonly [Engine, () => Promise<string | undefined>][] = [
  [memory, async () => undefined],
  [file, async () => undefined],
  [redis, () => redisSkipReason("backplane contract on Redis")],
  [nats, () => natsSkipReason("backplane contract on NATS JetStream")],
];
