/**
 * Running one fixture server on Node, Bun and Deno, and reading a Fetch event stream: shared by
 * the tests of the Fetch adapters (test/fetch.test.ts, test/fetch-handler.test.ts).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The command that runs `fixture` on each runtime. */
export function runtimes(fixture: string) {
  return {
    node: [process.execPath, "--import", "tsx", fixture],
    bun: ["bun", fixture],
    deno: ["deno", "run", "--allow-net", "--allow-env", "--allow-read", "--allow-sys", fixture],
  } as const;
}

/** True when `binary --version` runs. */
export function available(binary: string): boolean {
  return spawnSync(binary, ["--version"], { stdio: "ignore" }).status === 0;
}

/** Starts a fixture server; it prints `{"port": …}` on its first line once it listens. */
export async function startServer(
  command: readonly string[],
): Promise<{ child: ChildProcess; url: string }> {
  const [binary, ...args] = command as [string, ...string[]];
  const child = spawn(binary, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> });
  const [line] = (await once(lines, "line")) as [string];
  const { port } = JSON.parse(line) as { port: number };
  return { child, url: `http://127.0.0.1:${port}` };
}

/** Reads an event stream's body as text until `until` holds for what has arrived. */
export async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  until: (text: string) => boolean,
): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  while (!until(text)) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}
