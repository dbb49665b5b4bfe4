/**
 * Scenarios that do not fit the publish-and-fan-out phases of `loadgen.ts`: a resume storm on
 * Redis (`resume-storm.ts`) and a long soak with churn (`soak.ts`). Each starts a crier on the
 * server core, runs its own load process on the load core and stops both; they run only when
 * named (`npm run bench -- resume-storm`, `npm run bench -- soak`), never in a full run.
 *
 * Options: `--rounds N`; `--compare path/to/dist/cli/main.js` alternates rounds between this
 * tree's build and another build (e.g. main's, built in a temporary clone); resume-storm:
 * `--clients N` (5,000), `--offline-ms MS` (5,000), `--rate N` publishes per second (5); soak: `--minutes M` (5), `--subscribers N`
 * (10,000), `--churn N` per second (500).
 */
import { Redis } from "ioredis";
import {
  CRIER_CLI,
  freePort,
  JWT_KEY,
  LOADGEN_CORE,
  pinned,
  startPinned,
  stopProcess,
} from "./servers.ts";
import { deleteKeys, REDIS_URL } from "./two-nodes.ts";

/** A scenario run by its own load script. */
export interface CustomScenario {
  readonly name: string;
  /** The hub's extra flags (Redis flags are added when `redis` is true). */
  readonly hubFlags: string[];
  readonly redis: boolean;
  /** Node flags of the hub process (e.g. `--expose-gc`). */
  readonly nodeFlags?: string[];
  /** The load script, run as `node --import tsx <script> <config JSON>`. */
  readonly script: string;
  /** The load config, given the hub's port, pid and Redis prefix and the command-line options. */
  config(
    hub: { port: number; pid: number; prefix: string },
    option: (name: string) => number | undefined,
  ): object;
  /** Bound of one load run, ms (the load process is killed after it). */
  deadlineMs(option: (name: string) => number | undefined): number;
}

/** Runs `sc` once against the crier at `cli`; resolves with the load's JSON result. */
export async function runCustom(
  sc: CustomScenario,
  cli: string,
  option: (name: string) => number | undefined,
): Promise<Record<string, unknown>> {
  const port = await freePort();
  const prefix = `bench-${sc.name}:${process.pid}-${Date.now().toString(36)}:`;
  const argv = [
    "node",
    ...(sc.nodeFlags ?? []),
    cli,
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
  ];
  argv.push("--jwt-key", JWT_KEY, "--anonymous", "--keep-alive", "15000", ...sc.hubFlags);
  if (sc.redis) argv.push("--redis", REDIS_URL, "--redis-prefix", prefix);
  const hub = await startPinned(sc.name, argv, port);
  try {
    const cfg = sc.config({ port, pid: hub.pid, prefix }, option);
    const load = pinned(
      LOADGEN_CORE,
      ["node", "--import", "tsx", sc.script, JSON.stringify(cfg)],
      "pipe",
    );
    let out = "";
    let err = "";
    load.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
    });
    load.stderr?.on("data", (c: Buffer) => {
      err = (err + c.toString()).slice(-2000);
    });
    const exited = new Promise<void>((resolve) => load.once("exit", () => resolve()));
    const timer = setTimeout(() => load.kill("SIGKILL"), sc.deadlineMs(option));
    await exited;
    clearTimeout(timer);
    const last = out.trim().split("\n").pop() ?? "";
    return last.startsWith("{")
      ? (JSON.parse(last) as Record<string, unknown>)
      : { error: err.trim() };
  } finally {
    await stopProcess(hub.child);
    if (sc.redis) {
      const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      await deleteKeys(redis, prefix).catch(() => 0);
      redis.disconnect();
    }
  }
}

/** The custom scenarios by name. */
export const CUSTOM_SCENARIOS: CustomScenario[] = [
  {
    name: "resume-storm",
    hubFlags: [],
    redis: true,
    script: "bench/resume-storm.ts",
    config: (hub, option) => ({
      port: hub.port,
      pid: hub.pid,
      prefix: hub.prefix,
      jwtKey: JWT_KEY,
      redisUrl: REDIS_URL,
      clients: option("clients") ?? 5000,
      fill: 10_000,
      dataBytes: 1000,
      rate: option("rate") ?? 5,
      offlineMs: option("offline-ms") ?? 5000,
      connectWindow: 500,
      catchUpMs: 60_000,
    }),
    deadlineMs: () => 200_000,
  },
  {
    name: "soak",
    hubFlags: [],
    redis: false,
    // Bench only: the probe answers SIGUSR2 with heap after a forced GC, FDs and loop delay.
    nodeFlags: ["--expose-gc", "--import", "./bench/soak-probe.mjs"],
    script: "bench/soak.ts",
    config: (hub, option) => ({
      port: hub.port,
      pid: hub.pid,
      jwtKey: JWT_KEY,
      subscribers: option("subscribers") ?? 10_000,
      churn: option("churn") ?? 500,
      rate: option("rate") ?? 10,
      dataBytes: 128,
      minutes: option("minutes") ?? 5,
      sampleSec: 30,
      warmupSec: 15,
      connectWindow: 500,
    }),
    deadlineMs: (option) => ((option("minutes") ?? 5) * 60 + 300) * 1000,
  },
];

/** The crier builds to run, in round order: this tree's, alternating with `compare` if given. */
export function buildsOf(compare: string | undefined): string[] {
  return compare === undefined ? [CRIER_CLI] : [CRIER_CLI, compare];
}
