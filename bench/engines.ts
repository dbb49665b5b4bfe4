/**
 * One crier node on each Redis engine, for the engine-cost scenario (`fanout-engines`):
 *
 *   crier-redis    one node on the machine's shared Redis (127.0.0.1:6379), a fresh prefix
 *   crier-cluster  one node on a three-primary Redis Cluster started for the run (free ports,
 *                  a temporary directory), so every update goes publish → XADD on the primary
 *                  holding the prefix's slot → XREAD → subscribers
 *
 * The node is pinned to the server core like single-node crier; the Redis servers are not pinned
 * (as in `two-nodes.ts`) and their CPU is reported beside the node's. (The cluster's servers are
 * children of this process, which runs pinned to the load generator's core: they are given both
 * cores back, as the machine's Redis has, or they would compete with the generator alone.) `stop()` stops the node,
 * then deletes the prefix's keys or stops the cluster and removes its directory. The cluster is
 * the tests' (test/redis-servers.ts), so both build it one way.
 */
import { execFileSync } from "node:child_process";
import { Redis } from "ioredis";
import { startCluster } from "../test/redis-servers.ts";
import {
  CAN_PIN,
  crierArgv,
  freePort,
  LOADGEN_CORE,
  type Running,
  SERVER_CORE,
  startPinned,
  stopProcess,
} from "./servers.ts";
import { deleteKeys, REDIS_URL } from "./two-nodes.ts";

/** Starts one node on the shared Redis under a fresh prefix. */
export async function startOnRedis(): Promise<Running> {
  const prefix = `bench:${process.pid}-${Date.now().toString(36)}:`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 0, commandTimeout: 5000 });
  const port = await freePort();
  const flags = ["--redis", REDIS_URL, "--redis-prefix", prefix];
  const node = await startPinned("crier on Redis", crierArgv(port, undefined, flags), port);
  const pid = Number(/process_id:(\d+)/.exec(await redis.info("server"))?.[1]);
  return {
    name: "crier-redis",
    port,
    pid: node.pid,
    ...(pid > 0 ? { peerPids: { redis: pid } } : {}),
    async stop() {
      await stopProcess(node.child);
      await deleteKeys(redis, prefix).catch(() => 0);
      redis.disconnect();
    },
  };
}

/** Starts a three-primary Redis Cluster on free ports, then one node on it. */
export async function startOnCluster(): Promise<Running> {
  const cluster = await startCluster({ primaries: 3 });
  try {
    const cores = `${SERVER_CORE},${LOADGEN_CORE}`;
    for (const child of CAN_PIN ? cluster.children : []) {
      execFileSync("taskset", ["-a", "-cp", cores, String(child.pid)], { stdio: "ignore" });
    }
    const port = await freePort();
    const flags = ["--redis", cluster.url];
    const node = await startPinned("crier on Cluster", crierArgv(port, undefined, flags), port);
    const peerPids = Object.fromEntries(
      cluster.children.map((s, i) => [`redis${i + 1}`, s.pid as number]),
    );
    return {
      name: "crier-cluster",
      port,
      pid: node.pid,
      peerPids,
      async stop() {
        await stopProcess(node.child);
        cluster.stop();
      },
    };
  } catch (err) {
    cluster.stop();
    throw err;
  }
}
