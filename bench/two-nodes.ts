/**
 * The two-node server side (`crier-2node`): two crier processes started with the same `--redis`
 * and a key prefix of their own, so an update published on one is delivered by both.
 *
 *   publisher ──POST──▶ node A ──XADD──▶ Redis stream ──XREAD──▶ node A ──▶ its subscribers
 *                                                     └─XREAD──▶ node B ──▶ its subscribers
 *
 * Both nodes are pinned to the server core, so the server side has the same one core as the
 * single-node run and the figures compare the cost of scaling out, not extra hardware. Redis is
 * the machine's shared server on 127.0.0.1:6379 and is not pinned (it is not ours to move); its
 * CPU is reported beside the nodes'. When the run ends both nodes are stopped and every key under
 * the run's prefix is deleted.
 */
import { Redis } from "ioredis";
import { keyBase } from "../src/history/redis-keys.ts";
import { crierArgv, freePort, type Running, startPinned, stopProcess } from "./servers.ts";

/** The Redis both nodes share. */
export const REDIS_URL = "redis://127.0.0.1:6379";

/** Keys deleted per command, and SCAN calls at most: a run leaves 4 keys, so this never binds. */
const DELETE_BATCH = 500;
const MAX_SCANS = 200;

/** Redis's own pid (`INFO server`), to read its CPU from /proc; undefined if not local. */
async function redisPid(redis: Redis): Promise<number | undefined> {
  const info = await redis.info("server");
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Deletes every key under `prefix` (SCAN with MATCH, then UNLINK in batches); bounded by
 * {@link MAX_SCANS} calls. Returns how many keys were deleted.
 */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let [cursor, deleted] = ["0", 0];
  for (let scans = 0; scans < MAX_SCANS; scans++) {
    // Every key of a prefix starts with its hash tag (src/history/redis-keys.ts).
    const [next, keys] = await redis.scan(cursor, "MATCH", `${keyBase(prefix)}*`, "COUNT", 1000);
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      deleted += await redis.unlink(...keys.slice(i, i + DELETE_BATCH));
    }
    cursor = next;
    if (cursor === "0") break;
  }
  return deleted;
}

/**
 * Starts two crier nodes on free ports sharing Redis under a fresh prefix (`bench:<pid>-<time>:`).
 * Publishes go to the first node; subscribers are spread over both. `stop()` stops both nodes,
 * then deletes the prefix's keys (a failure to delete is reported on stderr, not thrown).
 */
export async function startTwoNodes(): Promise<Running> {
  const prefix = `bench:${process.pid}-${Date.now().toString(36)}:`;
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 2000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    await Promise.all(stops.map((s) => s()));
    // When this connection failed no node was started, so no key was written.
    if (redis.status === "ready") {
      await deleteKeys(redis, prefix).catch((err: unknown) => {
        process.stderr.write(`could not delete Redis keys ${prefix}*: ${String(err)}\n`);
      });
    }
    redis.disconnect();
  };
  try {
    await redis.connect();
    const flags = ["--redis", REDIS_URL, "--redis-prefix", prefix];
    const nodes: Array<{ port: number; pid: number }> = [];
    for (const label of ["node A", "node B"]) {
      const port = await freePort();
      const node = await startPinned(label, crierArgv(port, undefined, flags), port);
      stops.push(() => stopProcess(node.child));
      nodes.push({ port, pid: node.pid });
    }
    const [a, b] = nodes;
    if (!a || !b) throw new Error("two nodes expected");
    const redisProcess = await redisPid(redis);
    return {
      name: "crier-2node",
      port: a.port,
      pid: a.pid,
      subscriberPorts: [a.port, b.port],
      peerPids:
        redisProcess === undefined ? { node2: b.pid } : { node2: b.pid, redis: redisProcess },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
