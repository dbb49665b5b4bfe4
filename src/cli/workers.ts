/**
 * `crier --workers N`: N processes serving one port through node:cluster, sharing updates and
 * history through Redis. The primary serves nothing itself: it starts the workers, starts a new
 * one when a worker dies, and on SIGTERM/SIGINT asks each to shut down gracefully.
 */
import cluster, { type Worker } from "node:cluster";

/** How long the workers get to close their subscribers before they are killed. */
const STOP_GRACE_MS = 10_000;
/** Delay before a crashed worker is replaced, so a crash loop does not spin. */
const RESTART_DELAY_MS = 1000;

/**
 * Runs the primary until it is told to stop; resolves with the exit code: 0 after a graceful
 * stop, 1 when a worker failed before it was serving (bad port, Redis unreachable, …).
 * `env` is passed to every worker (the dev-mode key, so all workers accept the same tokens).
 */
export function runWorkers(
  count: number,
  env: Readonly<Record<string, string>>,
  log: (message: string) => void,
): Promise<number> {
  return new Promise((resolve) => {
    const serving = new WeakSet<Worker>();
    let stopping = false;
    let code = 0;
    const fork = () => cluster.fork(env);
    cluster.on("listening", (worker) => serving.add(worker));
    cluster.on("exit", (worker, exitCode, signal) => {
      if (!stopping && !serving.has(worker)) {
        log(`worker ${worker.process.pid} failed to start (${signal ?? `exit ${exitCode}`})`);
        code = 1;
        stop("failure");
      } else if (!stopping) {
        log(`worker ${worker.process.pid} died (${signal ?? `exit ${exitCode}`}); replacing it`);
        setTimeout(() => stopping || fork(), RESTART_DELAY_MS).unref();
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
      }, STOP_GRACE_MS).unref();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
    for (let i = 0; i < count; i++) fork();
  });
}
