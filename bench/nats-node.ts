/**
 * The NATS server side (`crier-nats`): one crier process with `--nats` and a stream of its own
 * (`crier-nats-2node`: two, sharing it),
 * so every update makes the round trip publish → JetStream → ordered consumer before any
 * subscriber sees it.
 *
 *   publisher ──POST──▶ node ──js.publish──▶ stream ──ordered consumer──▶ node ──▶ subscribers
 *
 * The node is pinned to the server core like the in-memory node it is compared with. The
 * nats-server is the machine's shared one on 127.0.0.1:4222 and is not pinned (it is not ours to
 * move); its CPU is reported beside the node's when its pid can be found. When the run ends the
 * node is stopped and the stream deleted.
 */
import { execFileSync } from "node:child_process";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { crierArgv, freePort, type Running, startPinned, stopProcess } from "./servers.ts";

/** The NATS the node uses. */
export const NATS_URL = "nats://127.0.0.1:4222";

/** The pid listening on 4222 (`ss -p`, readable for our own or as root); undefined if unknown. */
function natsPid(): number | undefined {
  try {
    const out = execFileSync("ss", ["-Htlnp", "sport = :4222"], { encoding: "utf8" });
    const pid = Number(/pid=(\d+)/.exec(out)?.[1]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function deleteStream(stream: string): Promise<void> {
  const nc = await connect({ servers: "127.0.0.1:4222", timeout: 2000, reconnect: false });
  try {
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
  } finally {
    await nc.close();
  }
}

/**
 * Starts `count` crier nodes (1 or 2) on NATS under a fresh stream (`bench-<pid>-<time>`).
 * Publishes go to the first node; subscribers are spread over all of them. Two nodes are
 * `crier-nats-2node`, pinned to the same core like `crier-2node` on Redis.
 */
export async function startNatsNodes(count: 1 | 2, history?: number): Promise<Running> {
  const stream = `bench-${process.pid}-${Date.now().toString(36)}`;
  const flags = ["--nats", NATS_URL, "--nats-stream", stream];
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    await Promise.all(stops.map((s) => s()));
    await deleteStream(stream).catch((err: unknown) => {
      process.stderr.write(`could not delete NATS stream ${stream}: ${String(err)}\n`);
    });
  };
  try {
    const nodes: Array<{ port: number; pid: number }> = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const node = await startPinned(
        `crier on NATS ${i + 1}`,
        crierArgv(port, history, flags),
        port,
      );
      stops.push(() => stopProcess(node.child));
      nodes.push({ port, pid: node.pid });
    }
    const [a, b] = nodes;
    if (a === undefined) throw new Error("no node started");
    const nats = natsPid();
    const peerPids: Record<string, number> = {};
    if (b !== undefined) peerPids.node2 = b.pid;
    if (nats !== undefined) peerPids.nats = nats;
    return {
      name: count === 1 ? "crier-nats" : "crier-nats-2node",
      port: a.port,
      pid: a.pid,
      ...(b === undefined ? {} : { subscriberPorts: [a.port, b.port] }),
      peerPids,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
