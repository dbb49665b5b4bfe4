/**
 * Restart time with a full history file: fills a `--history-file` with the default history
 * (10,000 updates of 128 bytes of data), then times `crier` from spawn to its `listening on` line
 * on that file, alternated with the same command keeping its history in memory, and prints the
 * medians as one JSON line. `npm run build` first; `node --import tsx bench/restart.ts [rounds]`.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileBackplane } from "../src/backplane/file.ts";
import { HISTORY_DEFAULTS } from "../src/history/memory.ts";
import { validateUpdate } from "../src/update.ts";
import { CRIER_CLI, JWT_KEY, machineFacts } from "./servers.ts";

const rounds = Number(process.argv[2] ?? 5);
const dir = mkdtempSync(join(tmpdir(), "crier-restart-"));
const file = join(dir, "history");

/** Milliseconds from spawn to `listening on`, then the process is stopped. */
async function startMs(extra: string[]): Promise<number> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [CRIER_CLI, "--port", "0", "--host", "127.0.0.1", "--jwt-key", JWT_KEY, ...extra],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  const ms = await new Promise<number>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("listening on")) resolve(performance.now() - started);
    });
    child.once("exit", (code) => reject(new Error(`crier exited ${code}: ${out}`)));
  });
  child.removeAllListeners("exit");
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
  return ms;
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return Math.round(s[Math.floor(s.length / 2)] as number);
};

try {
  const backplane = new FileBackplane({ path: file, pollMs: 0 });
  backplane.start(() => {});
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < HISTORY_DEFAULTS.maxEvents; i++) {
    writes.push(backplane.publish(validateUpdate({ topics: "t", data: "x".repeat(128) })));
  }
  await Promise.all(writes);
  const held = backplane.size();
  await backplane.close();
  const memory: number[] = [];
  const withFile: number[] = [];
  for (let round = 0; round < rounds; round++) {
    memory.push(await startMs([]));
    withFile.push(await startMs(["--history-file", file]));
  }
  const line = {
    scenario: "restart",
    held,
    fileBytes: statSync(file).size,
    rounds,
    memoryStartMs: median(memory),
    fileStartMs: median(withFile),
    runs: { memory: memory.map(Math.round), file: withFile.map(Math.round) },
    machine: machineFacts(),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
