/**
 * The package as a user gets it: `npm pack`, the tarball installed into an empty folder, and
 * then only what a user would run there: the `crier-hub` command, every subpath from ESM (and
 * from `require()` where Node loads ES modules that way), the types under both module
 * resolutions a TypeScript user picks, and the README's links.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ensureBuilt } from "./build.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MANIFEST = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  license: string;
  bin: Record<string, string>;
  exports: Record<string, unknown>;
};
const BIN = join(ROOT, "node_modules", ".bin");
const SUBPATHS = Object.keys(MANIFEST.exports)
  .filter((key) => key !== "./package.json")
  .map((key) => (key === "." ? MANIFEST.name : `${MANIFEST.name}/${key.slice(2)}`));

function installedVersion(name: string): string {
  const manifest = join(ROOT, "node_modules", name, "package.json");
  return (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
}

const execFileAsync = promisify(execFile);

// Runs a command to completion; fails with its output when it exits non-zero.
async function run(command: string, args: string[], cwd: string): Promise<string> {
  try {
    return (await execFileAsync(command, args, { cwd, encoding: "utf8", timeout: 110_000 })).stdout;
  } catch (err) {
    const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
    assert.fail(`${command} ${args.join(" ")}\n${stdout}${stderr}`);
  }
}

// The checks run side by side: each only reads the installed package.
describe("the published package", { concurrency: true }, () => {
  let dir: string;
  let app: string;
  let tarball: string;
  let installed: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "crier-pack-"));
    // The tarball must hold a build of the current sources. `npm pack` would rebuild through
    // `prepare` every time, which is most of this test's time on a busy machine: the build runs
    // only when a source is newer than the build (as after an edit), and the pack skips it.
    await ensureBuilt();
    const packed = JSON.parse(
      await run(
        "npm",
        ["pack", "--json", "--silent", "--ignore-scripts", "--pack-destination", dir],
        ROOT,
      ),
    ) as { filename: string }[];
    tarball = join(dir, (packed[0] as { filename: string }).filename);
    app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), '{ "private": true, "type": "module" }\n');
    // Versions the local cache holds, so the install needs no network when the cache is warm.
    await run(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        tarball,
        `ioredis@${installedVersion("ioredis")}`,
        `lmdb@${installedVersion("lmdb")}`,
        `@nats-io/transport-node@${installedVersion("@nats-io/transport-node")}`,
        `@nats-io/jetstream@${installedVersion("@nats-io/jetstream")}`,
        `@types/node@${installedVersion("@types/node")}`,
      ],
      app,
    );
    installed = join(app, "node_modules", MANIFEST.name);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  // npm marks a bin executable when it links it; `npx crier-hub` in a clone links the clone's
  // own, and a later `npm run build` rewrites that file: it must come out executable itself.
  test("builds the command as an executable file", () => {
    const mode = statSync(join(ROOT, "dist", "cli", "main.js")).mode;
    assert.equal(mode & 0o111, 0o111, `dist/cli/main.js has mode ${(mode & 0o777).toString(8)}`);
  });

  test("installs the crier-hub and crier commands", async () => {
    for (const bin of Object.keys(MANIFEST.bin)) {
      assert.match(await run("npx", ["--no-install", bin, "--help"], app), /^Usage:/);
    }
    assert.deepEqual(Object.keys(MANIFEST.bin).sort(), ["crier", "crier-hub"]);
  });

  test("every subpath imports from ESM", async () => {
    const script = SUBPATHS.map(
      (path, i) => `const m${i} = await import(${JSON.stringify(path)});
        if (Object.keys(m${i}).length === 0) throw new Error(${JSON.stringify(`${path} exports nothing`)});`,
    ).join("\n");
    await run(process.execPath, ["--input-type=module", "-e", script], app);
  });

  test("every subpath loads with require() on Node 20.19 or later", async (t) => {
    const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
    if (major === 20 && minor < 19) {
      t.skip(`require() of ES modules needs Node 20.19 or later; this is ${process.version}`);
      return;
    }
    const script = SUBPATHS.map(
      (path) => `if (Object.keys(require(${JSON.stringify(path)})).length === 0) process.exit(1);`,
    ).join("\n");
    await run(process.execPath, ["--input-type=commonjs", "-e", script], app);
  });

  for (const resolution of ["nodenext", "bundler"] as const) {
    test(`its types check under moduleResolution ${resolution}`, async () => {
      const imports = SUBPATHS.map((path, i) => `import * as m${i} from ${JSON.stringify(path)};`);
      const uses = SUBPATHS.map((_, i) => `m${i}`).join(", ");
      const source = `${imports.join("\n")}
import { createHub, isCrierError, type Update } from "${MANIFEST.name}";
const hub = createHub({ keepAliveMs: 0 });
const update: Promise<Update> = hub.publish({ topics: "chat", data: "hi" });
void update.catch((err: unknown) => isCrierError(err));
export const all = [${uses}];
`;
      const project = join(app, resolution);
      mkdirSync(project, { recursive: true });
      writeFileSync(join(project, "index.ts"), source);
      const compilerOptions = {
        strict: true,
        noEmit: true,
        // Node's own types are big to check and not ours; arethetypeswrong (below) checks the
        // imports inside the package's declarations under both resolutions.
        skipLibCheck: true,
        target: "ES2022",
        types: ["node"],
        module: resolution === "nodenext" ? "nodenext" : "preserve",
        moduleResolution: resolution,
      };
      writeFileSync(
        join(project, "tsconfig.json"),
        JSON.stringify({ compilerOptions, files: ["index.ts"] }),
      );
      await run(join(BIN, "tsc"), ["-p", project], app);
    });
  }

  test("every relative link of the packaged README and docs resolves to a packaged file", () => {
    const docs = readdirSync(join(installed, "docs")).filter((name) => name.endsWith(".md"));
    const documents = ["README.md", ...docs.map((name) => `docs/${name}`)];
    for (const document of documents) {
      const text = readFileSync(join(installed, document), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (target === undefined || /^[a-z][a-z+.-]*:|^#/i.test(target)) continue;
        const file = join(installed, dirname(document), target.replace(/#.*$/, ""));
        assert.ok(existsSync(file), `${document} links to ${target}, which the package lacks`);
      }
    }
  });

  test("carries the MIT license text", () => {
    assert.match(
      readFileSync(join(installed, "LICENSE"), "utf8"),
      /^MIT License\n\nCopyright \(c\) 2026 The Crier authors\n/,
    );
    assert.equal(MANIFEST.license, "MIT");
  });

  test("publint and arethetypeswrong find nothing to report", async () => {
    await run(join(BIN, "publint"), ["--strict", "--pack", "false", installed], app);
    await run(join(BIN, "attw"), ["--profile", "esm-only", "--format", "ascii", tarball], app);
  });
});
