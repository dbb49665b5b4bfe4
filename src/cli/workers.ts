/**
 * `crier --workers N`: N processes serving one port through node:cluster, sharing updates and
 * history through Redis. The primary serves nothing itself: it starts the workers, starts a new
 * one whenever a worker dies (after a delay that grows while workers keep dying), on
 * SIGTERM/SIGINT asks each to shut down gracefully, and passes SIGHUP on to each that serves.
 * It exits 0 only after such a signal, and 1 when a worker fails before it ever served: a
 * supervisor then sees the failure.
 */
import cluster, { type Worker } from "node:cluster";

/** How long past their drain timeout the workers get to exit before they are killed. */
const STOP_GRACE_MS = 10_000;
/** Delay before a crashed worker is replaced, doubled per death in a row up to the max. */
const RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 30_000;
/** A replacement that serves this long resets the delay. */
const STABLE_MS = 60_000;

/**
 * Runs the primary until it is told to stop; resolves with the exit code: 0 after a graceful
 * stop, 1 when a worker failed before it was serving (bad port, Redis unreachable, …).
 * `env` is passed to every worker (the dev-mode key, so all workers accept the same tokens).
 * `listening` is called once, with the port, when the first worker listens.
 */
export function runWorkers(
  count: number,
  env: Readonly<Record<string, string>>,
  log: (message: string) => void,
  drainTimeoutMs = 0,
  listening: (port: number) => void = () => {},
): Promise<number> {
  return new Promise((resolve) => {
    const serving = new WeakSet<Worker>();
    let stopping = false;
    let code = 0;
    let deaths = 0;
    let lastDeath = 0;
    const fork = () => cluster.fork(env);
    // Once the hub has served, a replacement that fails to start is retried like any death.
    let served = false;
    cluster.on("listening", (worker, address) => {
      serving.add(worker);
      if (!served) listening(address.port);
      served = true;
    });
    cluster.on("exit", (worker, exitCode, signal) => {
      if (!stopping && !served && !serving.has(worker)) {
        log(`worker ${worker.process.pid} failed to start (${signal ?? `exit ${exitCode}`})`);
        code = 1;
        stop("failure");
      } else if (!stopping) {
        const now = Date.now();
        deaths = now - lastDeath > STABLE_MS ? 1 : deaths + 1;
        lastDeath = now;
        const delay = Math.min(RESTART_DELAY_MS * 2 ** (deaths - 1), MAX_RESTART_DELAY_MS);
        log(
          `worker ${worker.process.pid} died (${signal ?? `exit ${exitCode}`}); replacing it in ${delay} ms`,
        );
        // Not unref'd: with every worker dead, this timer is what keeps the primary alive.
        setTimeout(() => stopping || fork(), delay);
      }
      if (stopping && Object.keys(cluster.workers ?? {}).length === 0) resolve(code);
    });
    const stop = (reason: string) => {
      if (stopping) return;
      stopping = true;
      log(`${reason}: stopping ${count} workers`);
      const workers = Object.values(cluster.workers ?? {});
      if (workers.length === 0) resolve(code);
      for (const worker of workers) worker?.process.kill("SIGTERM");
      setTimeout(() => {
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGKILL");
      }, drainTimeoutMs + STOP_GRACE_MS).unref();
    };
    // Kept while stopping: a second signal with no listener would end the primary at once.
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    // Each serving worker reloads its certificate (serve.ts); the primary serves nothing to
    // reload, and a worker still starting reads the files as they are now anyway.
    process.on("SIGHUP", () => {
      for (const worker of Object.values(cluster.workers ?? {})) {
        if (worker !== undefined && serving.has(worker)) worker.process.kill("SIGHUP");
      }
    });
    for (let i = 0; i < count; i++) fork();
  });
}
