/**
 * The build the package's own name resolves to (`crier-hub` and its subpaths point into `dist/`,
 * and a file inside the package imports them by name, as the examples do): rebuilt only when a
 * source is newer than the build, and by one test file at a time, so that no test runs against
 * a `dist/` another one is deleting.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const execFileAsync = promisify(execFile);

function mtimes(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => statSync(join(entry.parentPath, entry.name)).mtimeMs);
}

/** True when `dist/` is missing or older than a file of `src/`. */
export function stale(): boolean {
  const built = mtimes(join(ROOT, "dist"));
  if (built.length === 0) return true;
  return Math.max(...mtimes(join(ROOT, "src"))) >= Math.min(...built);
}

/** Builds `dist/` if it is stale, holding a lock (flock) that every test file shares. */
export async function ensureBuilt(): Promise<void> {
  if (!stale()) return;
  const lock = join(tmpdir(), `crier-build-${ROOT.replaceAll("/", "_")}.lock`);
  // Checked again under the lock: another test file may have built it meanwhile.
  await execFileAsync(
    "flock",
    [lock, process.execPath, "--import", "tsx", fileURLToPath(import.meta.url)],
    { cwd: ROOT },
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url) && stale()) {
  await execFileAsync("npm", ["run", "build", "--silent"], { cwd: ROOT });
}
