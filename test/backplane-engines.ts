/**
 * The engines the backplane contract runs against: one entry each. Adding an engine is one more
 * entry here (and one more column in docs/engines.md).
 */
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
  [redis, () => redisSkipReason("backplane contract on Redis")],
  [nats, () => natsSkipReason("backplane contract on NATS JetStream")],
];
