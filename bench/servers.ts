/**
 * Process plumbing for the runner: start a server under test pinned to core 0, run the load
 * generator pinned to core 1, stop both within a bound, and describe the machine.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createParser } from "eventsource-parser";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import type { LoadConfig, LoadResult } from "./loadgen.ts";

/** The repository root: children run from here so `--import tsx` and `dist/` resolve. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The hub's entry point, present once `npm run build` has run. */
export const CRIER_CLI = `${ROOT}dist/cli/main.js`;
/** Core for the server under test, core for the load generator. */
export const SERVER_CORE = 0;
export const LOADGEN_CORE = 1;
/** Key both servers are started with; the baseline ignores it. */
export const JWT_KEY = "bench-secret-key-bench-secret-key";

/**
 * The servers a scenario can compare; crier ones only if built. `crier-2node` is two crier
 * processes sharing updates through Redis (see `two-nodes.ts`); `crier-redis` and `crier-cluster`
 * one node on one Redis or on a Redis Cluster (see `engines.ts`); `crier-nats` one crier process
 * on NATS JetStream, `crier-nats-2node` two (see `nats-node.ts`); `crier-file` keeps its history
 * in a new `--history-file` (`crier-file-always`: with `--history-sync always`). `crier-metrics`
 * is crier with `--metrics`, scraped once a second (Prometheus' default is every 15 s);
 * `crier-dashboard` is crier with `--dashboard` and one dashboard open (the figures' event
 * stream, one snapshot a second). Both watchers run in the runner, on the generator's core.
 * `crier-nopushback` is crier with `--pushback=off`, to compare pushback with its absence in one
 * run; `crier-nowindow` is crier with `--flush-window 0` (a flush on every event-loop turn);
 * `crier-before` has both off, as crier was before overload was designed for. `crier-ref` is
 * another build of crier (`npm run bench -- … --compare <its dist/cli/main.js>`, see
 * {@link setReferenceCli}), started like `crier`.
 */
export type ServerName =
  | "baseline"
  | "crier"
  | "crier-2node"
  | "crier-redis"
  | "crier-cluster"
  | "crier-nats"
  | "crier-nats-2node"
  | "crier-file"
  | "crier-file-always"
  | "crier-metrics"
  | "crier-dashboard"
  | "crier-nopushback"
  | "crier-nowindow"
  | "crier-before"
  | "crier-ref"
  | "synthetic"
  | "synthetic-turn"
  | "nchan";

// Crier with some of its defaults turned off, to compare them with their absence in one run.
const VARIANT_FLAGS: Partial<Record<ServerName, string[]>> = {
  "crier-nopushback": ["--pushback=off"],
  "crier-nowindow": ["--flush-window", "0"],
  "crier-before": ["--pushback=off", "--flush-window", "0"],
};

let referenceCli: string | undefined;

/** The `dist/cli/main.js` of another build, run as `crier-ref` beside this tree's `crier`. */
export function setReferenceCli(cli: string): void {
  referenceCli = cli;
}

/** A started server under test: one process, or several that act as one. */
export interface Running {
  name: ServerName;
  /** Where publishes go, and subscribers too unless {@link Running.subscriberPorts} is set. */
  port: number;
  /** The process whose memory and CPU are reported as the server's. */
  pid: number;
  /** Ports the subscribers are spread over, round-robin. */
  subscriberPorts?: number[];
  /** Other processes of the server side by name; their CPU is reported apart, not as foreign. */
  peerPids?: Record<string, number>;
  /** Stops every process of the server side and removes what it left behind. */
  stop(): Promise<void>;
}

/** The hard file-descriptor limit: children raise their soft limit to it (10k sockets each). */
export const FD_LIMIT =
  Number(execFileSync("bash", ["-c", "ulimit -Hn"]).toString().trim()) || 4096;

/** A port the OS reports free (listen(0), read, close); the race before reuse is negligible. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

/** Whether `taskset` exists and cores 0 and 1 exist; without them runs are unpinned (and say so). */
export const CAN_PIN = ((): boolean => {
  try {
    execFileSync("taskset", ["-c", `${SERVER_CORE},${LOADGEN_CORE}`, "true"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** Runs `argv` under `taskset -c core` with the soft fd limit raised to the hard limit. */
export function pinned(core: number, argv: string[], stdout: "pipe" | "ignore"): ChildProcess {
  const script = `ulimit -n ${FD_LIMIT}; exec "$@"`;
  const pin = CAN_PIN ? ["taskset", "-c", String(core)] : [];
  const [cmd = "bash", ...rest] = [...pin, "bash", "-c", script, "bench", ...argv];
  return spawn(cmd, rest, {
    cwd: ROOT,
    stdio: ["ignore", stdout, "pipe"],
  });
}

/** The crier command line on `port`, with `extra` flags (e.g. `--redis …`) appended. */
export function crierArgv(
  port: number,
  historySize?: number,
  extra: string[] = [],
  cli: string = CRIER_CLI,
): string[] {
  // CRIER_BENCH_CPU_PROF=<dir>: write a V8 CPU profile of each crier process there (node does
  // not take --cpu-prof from NODE_OPTIONS); the short drain lets it exit before stopProcess kills.
  const prof = process.env.CRIER_BENCH_CPU_PROF;
  const node = prof ? ["node", "--cpu-prof", "--cpu-prof-dir", prof] : ["node"];
  const argv = [...node, cli, "--port", String(port), "--host", "127.0.0.1"];
  if (prof) argv.push("--drain-timeout", "500");
  argv.push("--jwt-key", JWT_KEY, "--anonymous", "--keep-alive", "15000");
  if (historySize !== undefined) argv.push("--history-size", String(historySize));
  // CRIER_BENCH_FLAGS="--pushback-hold 200 …": more flags for every crier process, to try a
  // setting against the same load (the variant servers' own flags come after, and win).
  const more = process.env.CRIER_BENCH_FLAGS?.split(" ").filter((f) => f !== "") ?? [];
  return [...argv, ...more, ...extra];
}

/**
 * Starts `argv` pinned to the server core; resolves once `/healthz` answers on `port`, or kills
 * it and throws (with the end of its stderr) after 15 s.
 */
export async function startPinned(label: string, argv: string[], port: number) {
  const child = pinned(SERVER_CORE, argv, "ignore");
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-2000);
  });
  const deadline = performance.now() + 15_000;
  while (performance.now() < deadline && child.exitCode === null) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok && child.pid !== undefined) return { child, pid: child.pid };
    await sleep(100);
  }
  child.kill("SIGKILL");
  throw new Error(`${label} did not become healthy on port ${port}: ${stderr.trim()}`);
}

/**
 * Starts the baseline or a single-node crier on a free port, pinned to the server core, with
 * `flags` appended to crier's own.
 */
export async function startServer(
  name: Exclude<ServerName, "crier-2node">,
  historySize?: number,
  flags: string[] = [],
): Promise<Running> {
  const port = await freePort();
  // A history file of its own, in a folder removed with the server.
  const dir = name.startsWith("crier-file") ? mkdtempSync(join(tmpdir(), "crier-bench-")) : "";
  const extra =
    dir !== ""
      ? ["--history-file", join(dir, "history")].concat(
          name === "crier-file-always" ? ["--history-sync", "always"] : [],
        )
      : name === "crier-metrics"
        ? ["--metrics"]
        : name === "crier-dashboard"
          ? ["--dashboard"]
          : [];
  const argv =
    name === "baseline"
      ? ["node", "--import", "tsx", "bench/baseline.ts", "--port", String(port)]
      : name === "synthetic" || name === "synthetic-turn"
        ? ["node", "--import", "tsx", "bench/synthetic.ts", "--port", String(port)].concat(
            name === "synthetic-turn" ? ["--interval", "0"] : [],
          )
        : crierArgv(
            port,
            historySize,
            [...extra, ...flags, ...(VARIANT_FLAGS[name] ?? [])],
            name === "crier-ref" ? referenceCliOrThrow() : CRIER_CLI,
          );
  const { child, pid } = await startPinned(name, argv, port);
  const origin = `http://127.0.0.1:${port}`;
  const stopWatching =
    name === "crier-metrics"
      ? scrapeMetrics(origin)
      : name === "crier-dashboard"
        ? await openDashboard(origin)
        : () => {};
  return {
    name,
    port,
    pid,
    stop: async () => {
      stopWatching();
      await stopProcess(child);
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    },
  };
}

function referenceCliOrThrow(): string {
  if (referenceCli === undefined || !existsSync(referenceCli)) {
    throw new Error(`crier-ref needs --compare <a built dist/cli/main.js> (got ${referenceCli})`);
  }
  return referenceCli;
}

/** Scrapes `/metrics` once a second until the returned function is called. */
function scrapeMetrics(origin: string): () => void {
  const timer = setInterval(() => {
    fetch(`${origin}/metrics`).then(
      (res) => res.arrayBuffer(),
      () => {},
    );
  }, 1000);
  return () => clearInterval(timer);
}

/** Follows the dashboard's figures as its page does, until the returned function is called. */
async function openDashboard(origin: string): Promise<() => void> {
  const token = await mintToken(JWT_KEY, { admin: true });
  const controller = new AbortController();
  const res = await fetch(`${origin}/dashboard.json`, {
    headers: { Accept: "text/event-stream", Authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  if (!res.ok || res.body === null) throw new Error(`dashboard answered ${res.status}`);
  const body = res.body;
  // Parsed as the page does, so that a snapshot is read whole before the next is asked for.
  const parser = createParser({ onEvent: (event) => JSON.parse(event.data) });
  void (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body) parser.feed(decoder.decode(chunk, { stream: true }));
    } catch {
      // stopped
    }
  })();
  return () => controller.abort();
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const killed = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
  if (killed) {
    child.kill("SIGKILL");
    await exited;
  }
}

/** Runs the load generator on its own core; the result is the last JSON line it prints. */
export async function runLoadgen(cfg: LoadConfig): Promise<LoadResult> {
  const child = pinned(
    LOADGEN_CORE,
    ["node", "--import", "tsx", "bench/loadgen.ts", JSON.stringify(cfg)],
    "pipe",
  );
  let out = "";
  let err = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    err = (err + c.toString()).slice(-2000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // The generator stops itself at its deadline; this bound only catches a wedged process.
  const timer = setTimeout(() => child.kill("SIGKILL"), cfg.deadlineMs + 10_000);
  await exited;
  clearTimeout(timer);
  const last = out.trim().split("\n").pop() ?? "";
  const parsed = (last.startsWith("{") ? JSON.parse(last) : { error: err.trim() }) as
    | LoadResult
    | { error: string };
  if ("error" in parsed) throw new Error(`load generator failed: ${parsed.error}`);
  return parsed;
}

/** Which crier was measured: the commit, whether the tree had changes, when dist/ was built. */
function crierBuild(): string {
  if (!existsSync(CRIER_CLI)) return "not built";
  const git = (...a: string[]): string => {
    try {
      return execFileSync("git", a, { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] })
        .toString()
        .trim();
    } catch {
      return "";
    }
  };
  const dirty = git("status", "--porcelain", "--", "src") === "" ? "" : " (src modified)";
  const built = statSync(CRIER_CLI).mtime;
  // A dist/ older than the last commit to src/ measures some earlier source, not HEAD.
  const srcCommitted = Number(git("log", "-1", "--format=%ct", "--", "src")) * 1000;
  const stale =
    srcCommitted > built.getTime() ? " (STALE: dist/ predates src/; npm run build)" : "";
  return `${git("rev-parse", "--short", "HEAD") || "unknown"}${dirty}, dist built ${built.toISOString()}${stale}`;
}

/** Facts a result is meaningless without. */
export function machineFacts(): Record<string, string | number> {
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "latin1") : "";
  return {
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    memGB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    date: new Date().toISOString(),
    pinning: CAN_PIN
      ? `server: taskset -c ${SERVER_CORE}; load generator: taskset -c ${LOADGEN_CORE}`
      : "none (taskset or a second core missing): figures are not comparable",
    fdLimit: FD_LIMIT,
    crier: crierBuild(),
  };
}

/**
 * The hub's own count of overflow evictions and of publishes it held back or refused, read from
 * its `/metrics` (a crier started with `--metrics`); empty when it does not answer.
 */
export async function scrapePushback(port: number): Promise<Record<string, number>> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
    (r) => (r.ok ? r.text() : ""),
    () => "",
  );
  const sample = (name: string): number | undefined => {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  };
  const out: Record<string, number> = {};
  const figures = {
    overflowEvictions: 'crier_disconnects_total{reason="overflow"}',
    publishesHeld: "crier_publishes_held_total",
    publishesRefused: "crier_publishes_refused_total",
  };
  for (const [key, name] of Object.entries(figures)) {
    const v = sample(name);
    if (v !== undefined) out[key] = v;
  }
  return out;
}
