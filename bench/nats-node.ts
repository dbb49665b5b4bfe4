/**
 * The NATS server side (`crier-nats`): one crier process with `--nats` and a stream of its own,
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

/** Starts one crier node on NATS under a fresh stream (`bench-<pid>-<time>`). */
export async function startNatsNode(history?: number): Promise<Running> {
  const stream = `bench-${process.pid}-${Date.now().toString(36)}`;
  const port = await freePort();
  const flags = ["--nats", NATS_URL, "--nats-stream", stream];
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    await Promise.all(stops.map((s) => s()));
    await deleteStream(stream).catch((err: unknown) => {
      process.stderr.write(`could not delete NATS stream ${stream}: ${String(err)}\n`);
    });
  };
  try {
    const node = await startPinned("crier on NATS", crierArgv(port, history, flags), port);
    stops.push(() => stopProcess(node.child));
    const nats = natsPid();
    return {
      name: "crier-nats",
      port,
      pid: node.pid,
      ...(nats === undefined ? {} : { peerPids: { nats } }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
