/** The `crier` command as a real process: spawn it, read what it says, wait for it to listen. */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { sleep } from "./helpers.ts";

export const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
export const KEY = "cli-test-secret-cli-test-secret-123";

export interface Run {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exit: Promise<number | null>;
}

/** Runs `crier args…` with `env` over this process's environment. */
export function crier(args: string[], env: Record<string, string | undefined> = {}): Run {
  // `undefined` unsets a variable the test process has (an empty one would be refused for keys).
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [name, value] of Object.entries(merged)) if (value === undefined) delete merged[name];
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    env: merged,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const run: Run = {
    child,
    stdout: "",
    stderr: "",
    exit: once(child, "exit").then(([code]) => code as number | null),
  };
  child.stdout?.on("data", (d: Buffer) => (run.stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (run.stderr += d.toString()));
  return run;
}

export async function waitFor<T>(get: () => T | undefined, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Starts `crier` on a free port and resolves with its Mercure URL. */
export async function serve(args: string[], env: Record<string, string | undefined> = {}) {
  const run = crier(["--port", "0", "--host", "127.0.0.1", ...args], env);
  const url = await waitFor(
    () => /listening on (https?:\/\/[^\s"]+)/.exec(run.stdout)?.[1],
    `the hub to listen: ${run.stdout}${run.stderr}`,
  );
  return { run, url };
}
