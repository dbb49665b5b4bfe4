/**
 * The benchmark runner. `npm run bench` runs every scenario, `npm run bench -- fanout-1k` one,
 * `npm run bench:smoke` the correctness-only smoke run used in CI. Each scenario prints one JSON
 * line to stdout (also appended to bench/results/<date>.jsonl). Options: `--rounds N`,
 * `--baseline-only`, `--history-size N` (passed to single-node crier). `flood-1k` and `flood-10k`
 * compare crier with pushback (the default) and without (`--pushback=off`) instead of the baseline.
 * `--compare <dist/cli/main.js of another build>` runs that build too (`crier-ref`), alternated
 * with this tree's crier in every round, and adds `refRatio` (crier ÷ crier-ref).
 * `--publisher-thread` publishes from a worker thread of the generator (publisher-thread.ts).
 *
 * The server under test runs on core 0, the load generator on core 1, and this process (which
 * mostly waits) pins itself to core 1 too so it never takes time from the server.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { buildsOf, CUSTOM_SCENARIOS, runCustom } from "./custom.ts";
import {
  DEFAULT_SERVERS,
  disturbed,
  type Metrics,
  medians,
  type RunRecord,
  runOnce,
  SCENARIOS,
  type Scenario,
  SMOKE,
} from "./scenarios.ts";
import {
  CAN_PIN,
  CRIER_CLI,
  LOADGEN_CORE,
  machineFacts,
  ROOT,
  type ServerName,
  setReferenceCli,
} from "./servers.ts";

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const smoke = args.includes("--smoke");
const publisherThread = args.includes("--publisher-thread");
const roundsOverride = option("rounds") === undefined ? undefined : Number(option("rounds"));
const history = option("history-size") === undefined ? undefined : Number(option("history-size"));
const NUMERIC = ["clients", "offline-ms", "rate", "minutes", "subscribers", "churn"];
const valued = new Set(
  ["rounds", "history-size", "compare", ...NUMERIC].map(option).filter((v) => v !== undefined),
);
const names = args.filter((a) => !a.startsWith("--") && !valued.has(a));

/** `a` ÷ `b` for every figure both have (null where `b`'s is 0), e.g. crier ÷ baseline. */
function ratios(a: Metrics, b: Metrics): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(a)) {
    const d = b[k];
    if (d === undefined) continue;
    out[k] = d === 0 ? null : Math.round((v / d) * 1000) / 1000;
  }
  return out;
}

/** The figures of a variant of crier run beside plain crier, and its ratio variant ÷ crier. */
function variantOf(servers: ServerName[], of: (s: ServerName) => Metrics): Record<string, unknown> {
  const variant = servers.find((s) => s === "crier-metrics" || s === "crier-dashboard");
  if (variant === undefined || !servers.includes("crier")) return {};
  return { [variant]: of(variant), variantRatio: ratios(of(variant), of("crier")) };
}

/** Problems that make a smoke run fail: any loss, duplicate, reordering or broken stream. */
function smokeFailures(run: RunRecord, subscribers: number, events: number): string[] {
  if (run.error) return [run.error];
  const r = run.result;
  const p = r?.phases[0];
  if (!r || !p) return ["no result"];
  const bad: string[] = [];
  if (r.connect.live !== subscribers) bad.push(`${r.connect.live}/${subscribers} subscribed`);
  if (p.publish.accepted !== events) bad.push(`${p.publish.accepted}/${events} publishes accepted`);
  if (p.lost !== 0) bad.push(`${p.lost} lost`);
  if (p.duplicates !== 0) bad.push(`${p.duplicates} duplicates`);
  if (p.reordered !== 0) bad.push(`${p.reordered} reordered`);
  if (p.closedDuringPhase !== 0) bad.push(`${p.closedDuringPhase} subscriptions closed`);
  if (r.malformed !== 0) bad.push(`${r.malformed} malformed data lines`);
  return bad;
}

/** Wall-clock budget of a full run, s; later rounds are skipped to stay within it. */
const BUDGET_SEC = 540;
const started = performance.now();

/** Rough seconds of one round (every server): start, connect, settle, phases, drain, stop. */
function estimateSec(sc: Scenario): number {
  const phases = sc.phases.reduce((t, p) => t + p.durationMs / 1000 + 2, 0);
  return (sc.servers ?? DEFAULT_SERVERS).length * (10 + sc.settleMs / 1000 + phases);
}

async function main(): Promise<number> {
  if (CAN_PIN) {
    // -a: every thread (V8 GC, libuv pool), not just the main one.
    execFileSync("taskset", ["-a", "-cp", String(LOADGEN_CORE), String(process.pid)], {
      stdio: "ignore",
    });
  } else process.stderr.write("taskset unavailable: running unpinned\n");
  const haveCrier = existsSync(CRIER_CLI) && !args.includes("--baseline-only");
  if (!haveCrier && smoke) {
    process.stderr.write(`${CRIER_CLI} not found: run \`npm run build\` first\n`);
    return 1;
  }
  // Without crier (not built, or --baseline-only) every scenario runs the baseline alone.
  const reference = option("compare");
  if (reference !== undefined) setReferenceCli(reference);
  const serversOf = (sc: Scenario): ServerName[] =>
    (sc.servers ?? DEFAULT_SERVERS)
      .filter((s) => haveCrier || s === "baseline")
      .concat(haveCrier && reference !== undefined ? ["crier-ref"] : []);
  const unknown = names.filter(
    (n) => !SCENARIOS.some((s) => s.name === n) && !CUSTOM_SCENARIOS.some((s) => s.name === n),
  );
  if (unknown.length > 0) {
    const known = [...SCENARIOS, ...CUSTOM_SCENARIOS].map((s) => s.name).join(", ");
    process.stderr.write(`unknown scenario ${unknown.join(", ")}; known: ${known}\n`);
    return 2;
  }
  const list = smoke
    ? [SMOKE]
    : SCENARIOS.filter((s) => (names.length === 0 ? !s.namedOnly : names.includes(s.name)));
  const machine = machineFacts();
  mkdirSync(`${ROOT}bench/results`, { recursive: true });
  const file = `${ROOT}bench/results/${String(machine.date).slice(0, 10)}.jsonl`;
  let failed = false;

  // Scenarios with a load of their own run only when named; rounds alternate the builds.
  for (const sc of CUSTOM_SCENARIOS.filter((s) => names.includes(s.name))) {
    const numeric = (name: string) =>
      option(name) === undefined ? undefined : Number(option(name));
    const runs: Record<string, unknown>[] = [];
    for (let round = 1; round <= (roundsOverride ?? 1); round++) {
      for (const cli of buildsOf(option("compare"))) {
        process.stderr.write(`${sc.name}: ${cli}, round ${round}\n`);
        runs.push({ cli, round, ...(await runCustom(sc, cli, numeric)) });
      }
    }
    const json = JSON.stringify({ scenario: sc.name, runs, machine });
    process.stdout.write(`${json}\n`);
    appendFileSync(file, `${json}\n`);
    if (runs.some((r) => "error" in r)) failed = true;
  }

  for (const sc of list) {
    const rounds = roundsOverride ?? sc.rounds;
    const servers = serversOf(sc);
    const runs: RunRecord[] = [];
    const t0 = performance.now();
    // One extra round when a server has no undisturbed run yet (and the budget allows it).
    const unsettled = (): boolean =>
      servers.some((s) => runs.every((r) => r.server !== s || disturbed(r) || !r.metrics));
    for (
      let round = 1;
      round <= rounds || (!smoke && round === rounds + 1 && unsettled());
      round++
    ) {
      // Keep `npm run bench` under 10 minutes: an extra round runs only if it and one round of
      // every later scenario still fit in the budget.
      const roundSec = (performance.now() - t0) / 1000 / Math.max(1, round - 1);
      const later = list.slice(list.indexOf(sc) + 1).reduce((t, s) => t + estimateSec(s), 0);
      const left = BUDGET_SEC - (performance.now() - started) / 1000;
      if (round > 1 && roundSec + later > left) break;
      for (const server of servers) {
        process.stderr.write(`${sc.name}: ${server}, round ${round}\n`);
        runs.push(await runOnce(sc, server, round, history, { publisherThread }));
      }
    }
    const of = (s: ServerName) => medians(runs.filter((r) => r.server === s && r.metrics));
    const line: Record<string, unknown> = {
      scenario: sc.name,
      subscribers: sc.subscribers,
      ...(publisherThread ? { publisherThread } : {}),
      rounds: runs.length / servers.length,
      // Medians are over the undisturbed runs when there are any (see `disturbed` per run).
      quietRuns: Object.fromEntries(
        servers.map((s) => [s, runs.filter((r) => r.server === s && !disturbed(r)).length]),
      ),
      baseline: of("baseline"),
      crier: haveCrier ? of("crier") : null,
      ratio: haveCrier ? ratios(of("crier"), of("baseline")) : null,
      // A variant against plain crier (metrics, dashboard): variant ÷ crier.
      ...variantOf(servers, of),
      // Two nodes on Redis against one node in memory: crier-2node ÷ crier.
      ...(servers.includes("crier-2node")
        ? { "crier-2node": of("crier-2node"), twoNodeRatio: ratios(of("crier-2node"), of("crier")) }
        : {}),
      // The history in a file against the history in memory: crier-file ÷ crier.
      ...(servers.includes("crier-file")
        ? {
            "crier-file": of("crier-file"),
            fileRatio: ratios(of("crier-file"), of("crier")),
            "crier-file-always": of("crier-file-always"),
            fileAlwaysRatio: ratios(of("crier-file-always"), of("crier")),
          }
        : {}),
      // One and two nodes on NATS against one node in memory: ÷ crier.
      ...(servers.includes("crier-nats")
        ? { "crier-nats": of("crier-nats"), natsRatio: ratios(of("crier-nats"), of("crier")) }
        : {}),
      ...(servers.includes("crier-nats-2node")
        ? {
            "crier-nats-2node": of("crier-nats-2node"),
            natsTwoNodeRatio: ratios(of("crier-nats-2node"), of("crier")),
          }
        : {}),
      // One node on an engine against one node in memory: crier-redis ÷ crier, crier-cluster ÷ crier.
      ...Object.fromEntries(
        (["crier-redis", "crier-cluster"] as const)
          .filter((s) => servers.includes(s))
          .flatMap((s) => [
            [s, of(s)],
            [`${s}Ratio`, ratios(of(s), of("crier"))],
          ]),
      ),
      // Crier against itself with a default turned off: crier ÷ the variant (pushbackRatio for
      // crier-nopushback, windowRatio for crier-nowindow, beforeRatio for crier-before), and
      // against the featureless broadcaster (floorRatio, turnFloorRatio).
      ...Object.fromEntries(
        (
          [
            ["crier-nopushback", "pushbackRatio"],
            ["crier-nowindow", "windowRatio"],
            ["crier-before", "beforeRatio"],
            ["crier-ref", "refRatio"],
            ["synthetic", "floorRatio"],
            ["synthetic-turn", "turnFloorRatio"],
            ["nchan", "nchanRatio"],
          ] as const
        )
          .filter(([s]) => servers.includes(s))
          .flatMap(([s, ratio]) => [
            [s, of(s)],
            [ratio, ratios(of("crier"), of(s))],
          ]),
      ),
      runs: runs.map((r) => ({
        server: r.server,
        round: r.round,
        metrics: r.metrics,
        error: r.error,
        busyBeforePct: r.busyBeforePct,
        disturbed: disturbed(r),
        // Why subscriptions ended or publishes failed, when any did.
        closeReasons: r.result?.closeReasons,
        publishFailures: r.result?.phases.map((p) => p.publish.failures),
      })),
      seconds: Math.round((performance.now() - t0) / 1000),
      machine,
    };
    if (!haveCrier) line.note = "dist/cli/main.js not found: baseline only";
    if (smoke) {
      const crierRun = runs.find((r) => r.server === "crier");
      const bad = crierRun ? smokeFailures(crierRun, sc.subscribers, 200) : ["crier did not run"];
      line.smoke = bad.length === 0 ? "pass" : "fail";
      line.failures = bad;
      failed = bad.length > 0;
    }
    const json = JSON.stringify(line);
    process.stdout.write(`${json}\n`);
    appendFileSync(file, `${json}\n`);
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
