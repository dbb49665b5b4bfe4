/**
 * Shared pieces of the NATS tests: whether a JetStream-enabled nats-server answers (skip
 * locally, fail in CI), a unique stream name per test that is deleted afterwards, and
 * throwaway nats-servers (their own port and store directory) that a test can stop and restart.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";

export const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
export const NATS_SERVER = process.env.NATS_SERVER ?? "/usr/sbin/nats-server";

/**
 * `undefined` when NATS with JetStream answers; otherwise the reason to skip `suite`. With
 * CI=true a missing NATS is an error, so the suite fails instead of passing silently.
 */
export async function natsSkipReason(suite: string): Promise<string | undefined> {
  try {
    const nc = await connect({ servers: hostPort(NATS_URL), timeout: 1000, reconnect: false });
    try {
      await (await jetstreamManager(nc, { timeout: 1000 })).getAccountInfo();
    } finally {
      await nc.close();
    }
    return undefined;
  } catch (err) {
    const reason = `${suite}: no NATS with JetStream at ${NATS_URL} (${(err as Error).message}); start \`nats-server -js\` or set NATS_URL to run this suite`;
    if (process.env.CI === "true") throw new Error(reason);
    return reason;
  }
}

/** A stream name no other test run uses. */
export function uniqueStream(name: string): string {
  return `crier-test-${name}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** Deletes the stream `name` on the server at `url`, if it exists (never anything else). */
export async function deleteStream(name: string, url = NATS_URL): Promise<void> {
  const nc = await connect({ servers: hostPort(url), timeout: 2000, reconnect: false });
  try {
    await (await jetstreamManager(nc)).streams.delete(name).catch(() => false);
  } finally {
    await nc.close();
  }
}

/** A nats-server of the test's own, with JetStream storing into a temporary directory. */
export class NatsServer {
  #child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), "crier-nats-"));
  port = 0;

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /**
   * Starts it (on a random free port the first time, on the same port after that); with
   * `jetstream: false`, as a plain NATS server.
   */
  async start({ jetstream = true } = {}): Promise<void> {
    const port = this.port === 0 ? "-1" : String(this.port);
    const args = ["-a", "127.0.0.1", "-p", port, ...(jetstream ? ["-js", "-sd", this.dir] : [])];
    const child = spawn(NATS_SERVER, args, { stdio: ["ignore", "ignore", "pipe"] });
    this.#child = child;
    let log = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`nats-server did not start: ${log}`)),
        10_000,
      );
      child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
        log += chunk;
        const match = /Listening for client connections on [\d.]+:(\d+)/.exec(log);
        if (match !== null && log.includes("Server is ready")) {
          clearTimeout(timer);
          this.port = Number(match[1]);
          resolve();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}: ${log}`));
      });
    });
  }

  /** Stops it with `signal` and waits for the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
  }

  /** Stops it and deletes its store. */
  async remove(): Promise<void> {
    await this.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function hostPort(url: string): string {
  const { hostname, port } = new URL(url);
  return `${hostname}:${port || "4222"}`;
}
