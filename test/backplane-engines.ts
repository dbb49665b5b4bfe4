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
import {
  ownerOf,
  type RedisCluster,
  redisToolsSkipReason,
  type SentinelGroup,
  startCluster,
  startSentinelGroup,
} from "./redis-servers.ts";

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
    newest: "nothing stored to start on: a new node's history is empty (it is in the process)",
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

// A three-primary cluster, started when the engine's cases start. Every namespace carries one
// hash tag, so all of them live on one primary (`address`): the outage case cuts the way to it,
// and a wipe deletes keys there.
const TAG = "{crier-contract}";
let cluster: { servers: RedisCluster; address: URL } | undefined;
const clusterUp = () => {
  if (cluster === undefined) throw new Error("the cluster is not started");
  return cluster;
};
// The way to the primary that holds the namespaces goes through the proxy on `port`: the node
// learns that primary's address from the cluster, and the NAT map sends it to the proxy instead.
const via = (address: URL, port: number | undefined) =>
  port === undefined ? {} : { redis: { natMap: { [address.host]: { host: "127.0.0.1", port } } } };

export const redisCluster: Engine = {
  name: "Redis Cluster",
  async start() {
    const servers = await startCluster({ primaries: 3 });
    const { primary } = await ownerOf(servers.ports[0] as number, TAG);
    cluster = { servers, address: new URL(`redis://127.0.0.1:${primary.port}`) };
  },
  async stop() {
    cluster?.servers.stop();
    cluster = undefined;
  },
  get address() {
    return clusterUp().address;
  },
  namespace: () => `${TAG}${uniquePrefix("contract")}`,
  open: (prefix, bounds, port) =>
    new RedisBackplane({
      url: clusterUp().servers.url,
      prefix,
      maxLen: bounds?.maxLen,
      maxAgeMs: bounds?.maxAgeMs,
      ...via(clusterUp().address, port),
    }),
  unreachable: () => new RedisBackplane({ url: "redis+cluster://127.0.0.1:1", prefix: "unused:" }),
  wipe: (prefix) => deletePrefix(prefix, clusterUp().address.href),
  lengthSlack: 100,
  unsupported: {},
};

// A primary, a replica and a Sentinel, started when the engine's cases start. The outage case
// cuts the way to the primary the Sentinel names (a NAT map sends the node to the proxy).
let sentinel: SentinelGroup | undefined;
const sentinelUp = () => {
  if (sentinel === undefined) throw new Error("the Sentinel group is not started");
  return sentinel;
};
const primaryUrl = () => new URL(`redis://127.0.0.1:${sentinelUp().primary}`);

export const redisSentinel: Engine = {
  name: "Redis Sentinel",
  async start() {
    sentinel = await startSentinelGroup({ replicas: 1, failover: false });
  },
  async stop() {
    sentinel?.stop();
    sentinel = undefined;
  },
  get address() {
    return primaryUrl();
  },
  namespace: () => uniquePrefix("contract"),
  open: (prefix, bounds, port) =>
    new RedisBackplane({
      url: sentinelUp().url,
      prefix,
      maxLen: bounds?.maxLen,
      maxAgeMs: bounds?.maxAgeMs,
      ...via(primaryUrl(), port),
    }),
  unreachable: () =>
    new RedisBackplane({ url: "redis+sentinel://127.0.0.1:1/crier", prefix: "unused:" }),
  wipe: (prefix) => deletePrefix(prefix, primaryUrl().href),
  lengthSlack: 100,
  unsupported: {},
};

/** Each engine with the reason it cannot run here, if any. */
export const ENGINES: readonly [Engine, () => Promise<string | undefined>][] = [
  [memory, async () => undefined],
  [file, async () => undefined],
  [redis, () => redisSkipReason("backplane contract on Redis")],
  [nats, () => natsSkipReason("backplane contract on NATS JetStream")],
  [redisCluster, async () => redisToolsSkipReason("backplane contract on Redis Cluster")],
  [redisSentinel, async () => redisToolsSkipReason("backplane contract on Redis Sentinel")],
];
