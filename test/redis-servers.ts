/**
 * Throwaway Redis deployments for the tests and benchmarks that need more than the machine's one
 * Redis: a Redis Cluster (primaries, and replicas if asked), and a primary with replicas watched
 * by a Sentinel. Every process listens on a free port on 127.0.0.1 and keeps its files in a
 * temporary directory of its own.
 *
 * Invariant: `stop()` kills every process the deployment started (and nothing else) and removes
 * its directory; a deployment that fails to start stops what it had started before it throws.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { until } from "./helpers.ts";
import { startRedis } from "./redis-harness.ts";

const run = promisify(execFile);

/** What `redis-cli -p port …` prints, trimmed. */
export async function cli(port: number, ...args: string[]): Promise<string> {
  return (await run("redis-cli", ["-p", String(port), ...args])).stdout.trim();
}

/**
 * `undefined` when redis-server and redis-cli are installed (a Sentinel is `redis-server
 * --sentinel`); otherwise the reason to skip `suite`. With CI=true a missing binary is an
 * error, not a skip.
 */
export function redisToolsSkipReason(suite: string): string | undefined {
  for (const binary of ["redis-server", "redis-cli"]) {
    try {
      execFileSync(binary, ["--version"], { stdio: "ignore" });
    } catch {
      const reason = `${suite}: needs ${binary} (apt-get install redis-server)`;
      if (process.env.CI === "true") throw new Error(reason);
      return reason;
    }
  }
  return undefined;
}

/** Processes started for a deployment, and how to stop them. */
export interface Deployment {
  readonly dir: string;
  readonly children: ChildProcess[];
  stop(): void;
}

function deployment(name: string): Deployment {
  const dir = mkdtempSync(join(tmpdir(), `crier-${name}-`));
  const children: ChildProcess[] = [];
  return {
    dir,
    children,
    stop() {
      for (const child of children.splice(0)) child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Redis Cluster on free ports. */
export interface RedisCluster extends Deployment {
  /** Every node's port, primaries first (as given to `redis-cli --cluster create`). */
  readonly ports: readonly number[];
  /** `redis+cluster://` with two of the nodes as seeds. */
  readonly url: string;
}

/**
 * Starts `primaries` cluster nodes and `replicas` replicas of each, creates the cluster and
 * resolves once every node says `cluster_state:ok` and every replica follows its primary.
 */
export async function startCluster(
  options: { primaries?: number; replicas?: number; nodeTimeoutMs?: number } = {},
): Promise<RedisCluster> {
  const { primaries = 3, replicas = 0, nodeTimeoutMs = 2000 } = options;
  const d = deployment("cluster");
  try {
    const ports: number[] = [];
    for (let i = 0; i < primaries * (1 + replicas); i++) {
      const node = await startRedis(undefined, (port) =>
        [
          ["--cluster-enabled", "yes", "--cluster-node-timeout", String(nodeTimeoutMs)],
          // The bus port is the data port + 10,000 unless told: keep it within range. A taken
          // bus port makes the server exit, and startRedis tries another port.
          ["--cluster-port", String(port - 10_000)],
          ["--cluster-config-file", join(d.dir, `nodes-${port}.conf`), "--dir", d.dir],
        ].flat(),
      );
      d.children.push(node.child);
      ports.push(node.port);
    }
    await run("redis-cli", [
      ...["--cluster", "create", ...ports.map((port) => `127.0.0.1:${port}`)],
      ...["--cluster-replicas", String(replicas), "--cluster-yes"],
    ]);
    // Every node must agree the slots are covered before a client is told the layout.
    const settled = async (port: number) => {
      if (!(await cli(port, "cluster", "info")).includes("cluster_state:ok")) return false;
      const replication = await cli(port, "info", "replication");
      return replication.includes("role:master") || replication.includes("master_link_status:up");
    };
    await until(
      async () => (await Promise.all(ports.map(settled))).every(Boolean),
      "cluster_state:ok and every replica in sync",
      30_000,
    );
    const url = `redis+cluster://${ports
      .slice(0, 2)
      .map((port) => `127.0.0.1:${port}`)
      .join(",")}`;
    return { ...d, ports, url };
  } catch (err) {
    d.stop();
    throw err;
  }
}

/** One node of a cluster as `CLUSTER NODES` describes it. */
export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly primary: boolean;
  /** The id of the primary a replica follows. */
  readonly follows: string | undefined;
  /** Slot ranges a primary serves, inclusive. */
  readonly slots: readonly [number, number][];
}

/** The cluster's nodes as the node on `port` sees them (failed nodes left out). */
export async function clusterNodes(port: number): Promise<ClusterNode[]> {
  const nodes: ClusterNode[] = [];
  for (const line of (await cli(port, "cluster", "nodes")).split("\n")) {
    const [id = "", address = "", flags = "", follows = "-", , , , , ...ranges] = line.split(" ");
    if (flags.includes("fail") || flags.includes("noaddr")) continue;
    const slots = ranges
      .filter((r) => !r.startsWith("["))
      .map((r) => r.split("-").map(Number))
      .map(([from = 0, to = from]) => [from, to] as [number, number]);
    nodes.push({
      id,
      port: Number(/:(\d+)@/.exec(address)?.[1]),
      primary: flags.includes("master"),
      follows: follows === "-" ? undefined : follows,
      slots,
    });
  }
  return nodes;
}

/** The node on `port`'s view of which primary serves `key`, and that primary's replicas. */
export async function ownerOf(
  port: number,
  key: string,
): Promise<{ primary: ClusterNode; replicas: ClusterNode[] }> {
  const slot = Number(await cli(port, "cluster", "keyslot", key));
  const nodes = await clusterNodes(port);
  const primary = nodes.find((n) => n.primary && n.slots.some(([a, b]) => a <= slot && slot <= b));
  if (primary === undefined) throw new Error(`no primary serves slot ${slot}`);
  return { primary, replicas: nodes.filter((n) => n.follows === primary.id) };
}

/** A primary, its replicas and one Sentinel watching them as `name`. */
export interface SentinelGroup extends Deployment {
  readonly primary: number;
  readonly replicas: readonly number[];
  readonly sentinel: number;
  readonly name: string;
  /** `redis+sentinel://` for the Sentinel and `name`. */
  readonly url: string;
  /** The port of the primary the Sentinel names now. */
  currentPrimary(): Promise<number>;
}

/**
 * Starts a primary, `replicas` replicas following it and a Sentinel watching them as "crier";
 * resolves once the Sentinel knows every replica (it learns them from the primary's INFO, which
 * takes seconds), or at once with `failover: false` (for tests that never fail over).
 */
export async function startSentinelGroup(
  options: { replicas?: number; failover?: boolean } = {},
): Promise<SentinelGroup> {
  const { replicas = 1, failover = true } = options;
  const d = deployment("sentinel");
  const name = "crier";
  try {
    // In `dir`: a replica's sync writes an RDB file to the working directory. A diskless sync
    // waits 5 s for more replicas to join it unless told not to.
    const primary = await startRedis(undefined, () => [
      ...["--dir", d.dir, "--repl-diskless-sync-delay", "0"],
    ]);
    d.children.push(primary.child);
    const replicaPorts: number[] = [];
    for (let i = 0; i < replicas; i++) {
      const replica = await startRedis(undefined, () => [
        ...["--dir", d.dir, "--replicaof", "127.0.0.1", String(primary.port)],
      ]);
      d.children.push(replica.child);
      replicaPorts.push(replica.port);
      await until(
        async () => (await cli(replica.port, "info", "replication")).includes("link_status:up"),
        "the replica to follow the primary",
      );
    }
    const sentinel = await startSentinel(d, name, primary.port);
    await until(
      async () => {
        if (!failover) return true;
        const known = await cli(sentinel, "sentinel", "replicas", name);
        return replicaPorts.every((port) => known.includes(String(port)));
      },
      "Sentinel to see the replicas",
      15_000,
    );
    const group: SentinelGroup = {
      ...d,
      primary: primary.port,
      replicas: replicaPorts,
      sentinel,
      name,
      url: `redis+sentinel://127.0.0.1:${sentinel}/${name}`,
      async currentPrimary() {
        const reply = await cli(sentinel, "sentinel", "get-master-addr-by-name", name);
        return Number(reply.split("\n")[1]);
      },
    };
    return group;
  } catch (err) {
    d.stop();
    throw err;
  }
}

/** A Sentinel on a free port watching `primary` as `name`; resolves with its port. */
async function startSentinel(d: Deployment, name: string, primary: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const conf = join(d.dir, `sentinel-${port}.conf`);
    // Sentinel rewrites its file as it learns, so each gets its own.
    writeFileSync(
      conf,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        `sentinel monitor ${name} 127.0.0.1 ${primary} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 10000`,
        "",
      ].join("\n"),
    );
    // `redis-server --sentinel` is what Debian's `redis-sentinel` links to; it needs no package.
    const child = spawn("redis-server", [conf, "--sentinel"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    let out = "";
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
        if (out.includes("+monitor master")) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) {
      d.children.push(child);
      return port;
    }
    child.kill("SIGKILL");
    if (attempt >= 10) throw new Error(`redis-sentinel did not start: ${out}`);
  }
}
