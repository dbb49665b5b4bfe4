/**
 * One crier node on each Redis engine, for the engine-cost scenario (`fanout-engines`):
 *
 *   crier-redis    one node on the machine's shared Redis (127.0.0.1:6379), a fresh prefix
 *   crier-cluster  one node on a three-primary Redis Cluster started for the run (free ports,
 *                  a temporary directory), so every update goes publish → XADD on the primary
 *                  holding the prefix's slot → XREAD → subscribers
 *
 * The node is pinned to the server core like single-node crier; the Redis servers are not pinned
 * (as in `two-nodes.ts`) and their CPU is reported beside the node's. `stop()` stops the node,
 * then deletes the prefix's keys or stops the cluster and removes its directory.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { crierArgv, freePort, type Running, startPinned, stopProcess } from "./servers.ts";
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
  const dir = mkdtempSync(join(tmpdir(), "crier-bench-cluster-"));
  const servers: ChildProcess[] = [];
  const stopServers = () => {
    for (const server of servers) server.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      // The cluster bus listens on port + 10,000: keep both within range.
      const port = await freePort();
      const busPort = await freePort();
      const child = spawn(
        "redis-server",
        [
          ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
          ["--cluster-enabled", "yes", "--cluster-port", String(busPort), "--dir", dir],
          ["--cluster-config-file", join(dir, `nodes-${port}.conf`)],
        ].flat(),
        { stdio: "ignore" },
      );
      servers.push(child);
      ports.push(port);
    }
    for (const port of ports) await answers(port);
    const nodes = ports.map((port) => `127.0.0.1:${port}`);
    execFileSync("redis-cli", ["--cluster", "create", ...nodes, "--cluster-yes"], {
      stdio: "ignore",
    });
    for (const port of ports) await clusterOk(port);
    const port = await freePort();
    const flags = ["--redis", `redis+cluster://${nodes.join(",")}`];
    const node = await startPinned("crier on Cluster", crierArgv(port, undefined, flags), port);
    const peerPids = Object.fromEntries(servers.map((s, i) => [`redis${i + 1}`, s.pid as number]));
    return {
      name: "crier-cluster",
      port,
      pid: node.pid,
      peerPids,
      async stop() {
        await stopProcess(node.child);
        stopServers();
      },
    };
  } catch (err) {
    stopServers();
    throw err;
  }
}

const cli = (port: number, ...args: string[]): string =>
  execFileSync("redis-cli", ["-p", String(port), ...args], { stdio: ["ignore", "pipe", "ignore"] })
    .toString()
    .trim();

async function answers(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if (cli(port, "ping") === "PONG") return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`redis-server on ${port} did not start`);
}

async function clusterOk(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cli(port, "cluster", "info").includes("cluster_state:ok")) return;
    await sleep(50);
  }
  throw new Error(`the cluster did not become ok on ${port}`);
}
