import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { FileBackplane, loadLmdb } from "../src/backplane/file.ts";
import { validateUpdate } from "../src/update.ts";
import { crier, type Run, serve } from "./cli-harness.ts";
import { until } from "./helpers.ts";
import { JWT_KEY, publish, SseClient, waitFor } from "./redis-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "crier-history-faults-"));
const runs: Run[] = [];
const clients: SseClient[] = [];
const mounts: string[] = [];
let files = 0;
const newPath = () => join(dir, `history-${files++}`);

after(async () => {
  for (const client of clients) client.close();
  for (const run of runs) if (run.child.exitCode === null) run.child.kill("SIGKILL");
  await Promise.all(runs.map((run) => run.exit));
  for (const mount of mounts) execFileSync("umount", ["-l", mount]);
  rmSync(dir, { recursive: true, force: true });
});

/** A hub on `path` with anonymous subscribers; killed after the tests if still running. */
async function hub(path: string, args: string[] = []) {
  const started = await serve(["--history-file", path, "--anonymous", ...args], {
    CRIER_JWT_KEY: JWT_KEY,
  });
  runs.push(started.run);
  return started;
}

/** Runs `crier` on `path` and checks it exits 2 with `reason` as the first line on stderr. */
async function refused(path: string, reason: RegExp) {
  const run = crier(["--port", "0", "--history-file", path], { CRIER_JWT_KEY: JWT_KEY });
  runs.push(run);
  assert.equal(await run.exit, 2, run.stderr);
  assert.match(run.stderr.split("\n")[0] ?? "", reason);
}

/** Every id the hub on `url` holds, oldest first, read as a client resuming from `earliest`. */
async function stored(url: string, count: number): Promise<string[]> {
  const client = new SseClient("t");
  clients.push(client);
  await client.connect(url, "earliest");
  await waitFor(() => client.ids.length >= count, 10_000, `${count} stored updates`);
  client.close();
  return client.ids;
}

/** A file made through the library, holding `count` updates. */
async function fileWith(path: string, count: number): Promise<void> {
  const backplane = new FileBackplane({ path, pollMs: 0 });
  backplane.start(() => {});
  for (let i = 0; i < count; i++) {
    await backplane.publish(validateUpdate({ topics: "t", data: `${i}`.padEnd(200, ".") }));
  }
  await backplane.close();
}

/** A tmpfs of `size` mounted on a new folder, or the reason it cannot be. */
function tmpfs(size: string): { mount: string } | { skip: string } {
  const mount = join(dir, `tmpfs-${files++}`);
  mkdirSync(mount);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mount], {
      stdio: "pipe",
    });
  } catch (err) {
    return { skip: `cannot mount a tmpfs here: ${String((err as Error).message).split("\n")[0]}` };
  }
  mounts.push(mount);
  return { mount };
}

describe("the history file under faults, with real processes", { timeout: 120_000 }, () => {
  test("SIGKILL during 1,000 publishes: after a restart every acknowledged update is there in order, and a subscriber resumes exactly", async () => {
    const path = newPath();
    const first = await hub(path);
    const watcher = new SseClient("t");
    clients.push(watcher);
    await watcher.connect(first.url);
    // Eight publishers, each numbering its own updates; the hub is killed half-way.
    const acked: string[][] = Array.from({ length: 8 }, () => []);
    let total = 0;
    const lanes = acked.map(async (mine, lane) => {
      for (let k = 0; k < 125; k++) {
        const result = await publish(first.url, { topic: "t", data: `${lane}:${k}` });
        if (result.status !== 200) return;
        mine.push(result.body);
        if (++total === 500) first.run.child.kill("SIGKILL");
      }
    });
    await Promise.all(lanes);
    await first.run.exit;
    const acknowledged = acked.flat();
    assert.ok(acknowledged.length >= 500 && acknowledged.length < 1000, `${acknowledged.length}`);

    const second = await hub(path);
    const all = await stored(second.url, acknowledged.length);
    for (const id of acknowledged) assert.ok(all.includes(id), `acknowledged ${id} is missing`);
    // In order: each publisher's updates appear in the order it sent them.
    for (const mine of acked) {
      const positions = mine.map((id) => all.indexOf(id));
      assert.deepEqual(
        positions,
        [...positions].sort((a, b) => a - b),
      );
    }
    // The subscriber saw a prefix of the history, and resuming gives it exactly the rest.
    assert.deepEqual(watcher.ids, all.slice(0, watcher.ids.length));
    const seen = watcher.ids.length;
    await watcher.connect(second.url);
    assert.equal(watcher.resumedFrom, watcher.ids[seen - 1] ?? null);
    await waitFor(() => watcher.ids.length >= all.length, 10_000, "the missed updates");
    assert.deepEqual(watcher.ids, all);
    second.run.child.kill("SIGTERM");
    assert.equal(await second.run.exit, 0);
  });

  test("refuses to start on a file of a newer format, naming it", async () => {
    const path = newPath();
    await fileWith(path, 1);
    const env = loadLmdb().open({ path, noSubdir: true, maxDbs: 4 });
    await env.openDB({ name: "meta", encoding: "json" }).put("format", 99);
    await env.close();
    await refused(
      path,
      /^crier: --history-file: history file \S+ is of format 99, written by a newer version; this one reads format 1/,
    );
  });

  test("refuses to start on a truncated file, and on one that is not a history file", async () => {
    const path = newPath();
    await fileWith(path, 2000);
    truncateSync(path, Math.floor(statSync(path).size / 2));
    await refused(
      path,
      /^crier: --history-file: history file \S+ cannot be opened \(reading it crashed with SIGBUS/,
    );
    const garbage = newPath();
    writeFileSync(garbage, Buffer.alloc(64 * 1024, "not an lmdb file "));
    await refused(garbage, /^crier: --history-file: history file \S+ cannot be opened \(/);
  });

  test("refuses to start on a file with a damaged update, and on another program's LMDB file", async () => {
    const path = newPath();
    const backplane = new FileBackplane({ path, pollMs: 0 });
    backplane.start(() => {});
    for (let i = 0; i < 5; i++) {
      await backplane.publish(validateUpdate({ topics: "t", data: `damage-me-${i}` }));
    }
    await backplane.close();
    // One byte of each copy of an update's JSON changed: LMDB reads it, JSON does not.
    const bytes = readFileSync(path);
    const marker = Buffer.from('"damage-me-3');
    for (let at = bytes.indexOf(marker); at !== -1; at = bytes.indexOf(marker, at + 1)) {
      bytes[at] = "{".charCodeAt(0);
    }
    writeFileSync(path, bytes);
    await refused(
      path,
      /^crier: --history-file: history file \S+ cannot be read to the end \(SyntaxError: .*it is damaged or not a history file\)/,
    );

    const foreign = newPath();
    const env = loadLmdb().open({ path: foreign, noSubdir: true });
    for (let i = 0; i < 10; i++) await env.put(`user:${i}`, { name: `user ${i}` });
    await env.close();
    await refused(
      foreign,
      /^crier: --history-file: history file \S+ cannot be read to the end \(\w*Error: .*it is damaged or not a history file\)/,
    );
  });

  test("refuses a path whose directory does not exist, rather than making it", async () => {
    const path = join(dir, "no-such-directory", "history");
    await refused(
      path,
      /^crier: --history-file: history file \S+: its directory \S+ does not exist/,
    );
    assert.equal(existsSync(dirname(path)), false);
  });

  test("drains and exits 1 when its file is removed under it, refusing publishes that would be lost", async () => {
    const path = newPath();
    const first = await hub(path, ["--drain-timeout", "1000"]);
    assert.equal((await publish(first.url, { topic: "t", data: "kept" })).status, 200);
    rmSync(path);
    const refusal = await publish(first.url, { topic: "t", data: "would be lost" });
    assert.equal(refusal.status, 503);
    assert.match(
      refusal.body,
      /^the history file \S+ was removed or replaced while this process had it open \(an update may have been written to the removed file\); restart the process/,
    );
    assert.equal(await first.run.exit, 1);
    assert.match(
      first.run.stdout,
      /history file removed or replaced: draining, to be restarted on it/,
    );
  });

  test("a stream opened after a restart names the newest stored id in Last-Event-ID", async () => {
    const path = newPath();
    const first = await hub(path);
    const last = await publish(first.url, { topic: "t", data: "before the restart" });
    first.run.child.kill("SIGTERM");
    assert.equal(await first.run.exit, 0);
    const second = await hub(path);
    const client = new SseClient("t");
    clients.push(client);
    await client.connect(second.url);
    assert.equal(client.resumedFrom, last.body);
    client.close();
  });

  test("refuses to start on a file it cannot write", async (t) => {
    const fs = tmpfs("4m");
    if ("skip" in fs) return t.skip(fs.skip);
    const path = join(fs.mount, "history");
    await fileWith(path, 10);
    execFileSync("mount", ["-o", "remount,ro", fs.mount]);
    await refused(path, /^crier: --history-file: history file \S+ cannot be opened \(/);
  });
});

describe("the history file on a full disk, with a real process", { timeout: 120_000 }, () => {
  test("after a write the disk refused: ready again within seconds, and SIGTERM still exits in time", async (t) => {
    const fs = tmpfs("2m");
    if ("skip" in fs) return t.skip(fs.skip);
    const path = join(fs.mount, "history");
    const first = await hub(path, ["--drain-timeout", "1000"]);
    assert.equal((await publish(first.url, { topic: "t", data: "first" })).status, 200);
    writeFileSync(join(fs.mount, "filler"), Buffer.alloc(0));
    try {
      execFileSync(
        "dd",
        ["if=/dev/zero", `of=${join(fs.mount, "filler")}`, "bs=1k", "count=4000"],
        {
          stdio: "ignore",
        },
      );
    } catch {
      // dd stops at the full disk: that is the point.
    }
    const refused = await publish(first.url, { topic: "t", data: "x".repeat(200_000) });
    assert.equal(refused.status, 503, refused.body);
    const ready = () => fetch(new URL("/readyz", first.url)).then((r) => r.status);
    assert.equal(await ready(), 503, "not ready just after the failure");
    // No publish comes (readiness turns publishers away), yet it is ready again.
    await until(async () => (await ready()) === 200, "ready again");
    const signalled = Date.now();
    first.run.child.kill("SIGTERM");
    assert.equal(await first.run.exit, 0, first.run.stdout);
    // Before: the file's close waited for ever on the failed commit, and so did the drain.
    assert.ok(Date.now() - signalled < 8000, `exited ${Date.now() - signalled} ms after SIGTERM`);
  });

  test("answers publishes 503 while the disk is full, keeps serving, loses nothing acknowledged, and accepts publishes again once there is room", async (t) => {
    const fs = tmpfs("2m");
    if ("skip" in fs) return t.skip(fs.skip);
    // Room that is given back once the disk has filled.
    writeFileSync(join(fs.mount, "filler"), Buffer.alloc(256 * 1024));
    const path = join(fs.mount, "history");
    const first = await hub(path);
    const acknowledged: string[] = [];
    let refusal: { status: number; body: string } | undefined;
    for (let i = 0; i < 1000 && refusal === undefined; i++) {
      const result = await publish(first.url, { topic: "t", data: `${i}:${"x".repeat(8000)}` });
      if (result.status === 200) acknowledged.push(result.body);
      else refusal = result;
    }
    assert.equal(refusal?.status, 503, "the disk never filled");
    assert.match(refusal?.body ?? "", /^the history file cannot be written \(No space left/);
    assert.ok(acknowledged.length > 10);
    // Still serving: a client resumes from a recent id (a replay of the whole 2 MB would pass
    // a subscriber's queue bound).
    const client = new SseClient("t");
    clients.push(client);
    await client.connect(first.url, acknowledged.at(-21));
    await waitFor(() => client.ids.length >= 20, 10_000, "the replay");
    assert.deepEqual(client.ids, acknowledged.slice(-20));
    rmSync(join(fs.mount, "filler"));
    const again = await publish(first.url, { topic: "t", data: "room again" });
    assert.equal(again.status, 200, again.body);
    acknowledged.push(again.body);
    await waitFor(() => client.ids.length === 21, 10_000, "the live update");
    client.close();
    first.run.child.kill("SIGTERM");
    assert.equal(await first.run.exit, 0);
    // Every acknowledged update is in the file, in order.
    const backplane = new FileBackplane({ path, pollMs: 0 });
    backplane.start(() => {});
    assert.deepEqual(
      backplane.replay("earliest")?.updates.map((u) => u.id),
      acknowledged,
    );
    await backplane.close();
  });
});
