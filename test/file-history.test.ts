import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { FileBackplane, type FileBackplaneOptions } from "../src/backplane/file.ts";
import { parseServeConfig } from "../src/cli/config.ts";
import { isCrierError } from "../src/errors.ts";
import { createHub } from "../src/hub.ts";
import { type Update, validateUpdate } from "../src/update.ts";

const dir = mkdtempSync(join(tmpdir(), "crier-file-history-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newPath = () => join(dir, `history-${files++}`);

const fields = (data: string, id?: string) => validateUpdate({ topics: ["t"], data, id });
const ids = (replay: { updates: readonly Update[] } | undefined) =>
  replay?.updates.map((u) => u.id);

/** A started backplane on `path`, and what it delivered. */
function open(path: string, options: Omit<FileBackplaneOptions, "path"> = {}) {
  const backplane = new FileBackplane({ path, pollMs: 0, ...options });
  const delivered: string[] = [];
  backplane.start((update) => delivered.push(update.id));
  return { backplane, delivered };
}

describe("FileBackplane", () => {
  test("generates ordered, distinct ids, honours a publisher's id and delivers each once", async () => {
    const { backplane, delivered } = open(newPath());
    const a = await backplane.publish(fields("a"));
    const b = await backplane.publish(fields("b", "mine"));
    const c = await backplane.publish(fields("c"));
    assert.equal(b.id, "mine");
    assert.notEqual(a.id, c.id);
    assert.deepEqual(delivered, [a.id, "mine", c.id]);
    assert.deepEqual(ids(backplane.replay(a.id)), ["mine", c.id]);
    assert.deepEqual(ids(backplane.replay("mine")), [c.id]);
    assert.deepEqual(ids(backplane.replay(c.id)), []);
    assert.equal(backplane.replay("nope"), undefined);
    assert.deepEqual(ids(backplane.replay("earliest")), [a.id, "mine", c.id]);
    assert.equal(backplane.lastEventId(), c.id);
    assert.equal(c.bytes.toString(), `id: ${c.id}\ndata: c\n\n`);
    await backplane.close();
  });

  test("keeps every update, its order and its ids across a reopen of the same file", async () => {
    const path = newPath();
    const first = open(path);
    const published: Update[] = [];
    for (let i = 0; i < 50; i++) published.push(await first.backplane.publish(fields(`${i}`)));
    await first.backplane.close();
    const second = open(path);
    assert.equal(second.backplane.lastEventId(), published.at(-1)?.id);
    const replay = second.backplane.replay(published[9]?.id as string);
    assert.deepEqual(
      ids(replay),
      published.slice(10).map((u) => u.id),
    );
    assert.deepEqual(
      replay?.updates.map((u) => u.bytes.toString()),
      published.slice(10).map((u) => u.bytes.toString()),
    );
    const next = await second.backplane.publish(fields("after"));
    assert.ok(!published.some((u) => u.id === next.id), "a reopened file never reuses an id");
    await second.backplane.close();
  });

  test("a new file is a new epoch: ids of a removed file answer unknown, never a wrong replay", async () => {
    const path = newPath();
    const first = open(path);
    const old = await first.backplane.publish(fields("old"));
    await first.backplane.close();
    rmSync(path);
    rmSync(`${path}-lock`, { force: true });
    const second = open(path);
    await second.backplane.publish(fields("new"));
    assert.equal(second.backplane.replay(old.id), undefined);
    await second.backplane.close();
  });

  test("evicts the oldest beyond maxEvents, and their ids become unknown", async () => {
    const { backplane } = open(newPath(), { maxEvents: 3 });
    for (let i = 1; i <= 5; i++) await backplane.publish(fields(String(i), String(i)));
    assert.equal(backplane.size(), 3);
    assert.equal(backplane.replay("1"), undefined);
    assert.equal(backplane.replay("2"), undefined);
    assert.deepEqual(ids(backplane.replay("3")), ["4", "5"]);
    await backplane.close();
  });

  test("evicts the oldest beyond maxBytes", async () => {
    const size = validateUpdate({ topics: ["t"], data: "x".repeat(100), id: "a" });
    const probe = open(newPath());
    const bytes = (await probe.backplane.publish(size)).bytes.length;
    await probe.backplane.close();
    const { backplane } = open(newPath(), { maxBytes: bytes * 2 });
    for (const id of ["a", "b", "c"]) await backplane.publish(fields("x".repeat(100), id));
    assert.equal(backplane.size(), 2);
    assert.equal(backplane.replay("a"), undefined);
    assert.deepEqual(ids(backplane.replay("b")), ["c"]);
    await backplane.close();
  });

  test("evicts updates older than maxAgeMs: resuming from one answers unknown", async () => {
    const { backplane } = open(newPath(), { maxAgeMs: 50 });
    await backplane.publish(fields("a", "a"));
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(backplane.replay("a"), undefined);
    assert.deepEqual(ids(backplane.replay("earliest")), []);
    await backplane.publish(fields("b", "b"));
    assert.equal(backplane.size(), 1, "the expired update was evicted from the file");
    await backplane.close();
  });

  test("an update larger than maxBytes is delivered, not kept, and resuming across it answers unknown", async () => {
    const { backplane, delivered } = open(newPath(), { maxBytes: 64 });
    await backplane.publish(fields("small", "a"));
    await backplane.publish(fields("x".repeat(100), "big"));
    assert.deepEqual(delivered, ["a", "big"]);
    assert.equal(backplane.replay("a"), undefined, "a partial window would hide the big update");
    await backplane.publish(fields("after", "b"));
    assert.deepEqual(ids(backplane.replay("b")), []);
    await backplane.close();
  });

  test("refuses a publisher id still in the history (409), and generates fragments no publisher id can take", async () => {
    const { backplane } = open(newPath());
    await backplane.publish(fields("a", "dup"));
    await assert.rejects(backplane.publish(fields("b", "dup")), (err) =>
      isCrierError(err, "CRIER_ERR_DUPLICATE_ID"),
    );
    assert.equal(backplane.size(), 1);
    // A publisher id like the generated ones but for the `#`, which the hub refuses to publishers.
    const mine = `${backplane.history.epoch}-2`;
    await backplane.publish(fields("c", mine));
    const generated = await backplane.publish(fields("d"));
    assert.equal(generated.id, `#${backplane.history.epoch}-2`);
    assert.deepEqual(ids(backplane.replay(mine)), [generated.id]);
    await backplane.close();
  });

  test("keeps nothing with maxEvents 0", async () => {
    const { backplane } = open(newPath(), { maxEvents: 0 });
    const a = await backplane.publish(fields("a"));
    assert.equal(backplane.size(), 0);
    assert.equal(backplane.replay(a.id), undefined);
    await backplane.close();
  });

  test("two backplanes on one file share one order, and each delivers every update once", async () => {
    const path = newPath();
    const one = open(path, { pollMs: 5 });
    const two = open(path, { pollMs: 5 });
    const published: string[] = [];
    for (let i = 0; i < 20; i++) {
      const on = i % 2 === 0 ? one : two;
      published.push((await on.backplane.publish(fields(String(i)))).id);
    }
    const end = Date.now() + 5000;
    while ((one.delivered.length < 20 || two.delivered.length < 20) && Date.now() < end) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(one.delivered, published);
    assert.deepEqual(two.delivered, published);
    assert.deepEqual(ids(two.backplane.replay(published[4] as string)), published.slice(5));
    await one.backplane.close();
    await two.backplane.close();
  });

  // With --workers, a client may resume on a process that has not read the file as far as the
  // one it came from: what that process catches up on at or before the client's cursor used to
  // reach the client again, after its replay (duplicated and out of order).
  test("under a hub: resuming on a process behind the one the client came from repeats nothing", async () => {
    const path = newPath();
    const ahead = createHub({ backplane: new FileBackplane({ path, pollMs: 0 }) });
    const behind = createHub({ backplane: new FileBackplane({ path, pollMs: 0 }) });
    await ahead.ready();
    await behind.ready();
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push((await ahead.publish({ topics: "t", data: `${i}` })).id);
    // `behind` has read none of them (no polling): the client saw up to the fourth on `ahead`.
    const updates = behind.updates({ topics: ["t"], lastEventId: seen[3] });
    assert.equal(await updates.earliest, false);
    const late = await ahead.publish({ topics: "t", data: "late" });
    const got: string[] = [];
    const more = behind.publish({ topics: "t", data: "on behind" });
    for await (const update of updates) {
      got.push(update.id);
      if (got.length === 4) break;
    }
    assert.deepEqual(got, [seen[4], seen[5], late.id, (await more).id]);
    await ahead.close();
    await behind.close();
  });

  test("under a hub: a resuming subscriber gets exactly what it missed", async () => {
    const path = newPath();
    const backplane = new FileBackplane({ path });
    const hub = createHub({ backplane });
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) seen.push((await hub.publish({ topics: "t", data: `${i}` })).id);
    await hub.close();
    const again = createHub({ backplane: new FileBackplane({ path }) });
    const updates = again.updates({ topics: ["t"], lastEventId: seen[1] });
    const late = await again.publish({ topics: "t", data: "late" });
    const got: string[] = [];
    for await (const update of updates) {
      got.push(update.id);
      if (got.length === 4) break;
    }
    assert.deepEqual(got, [...seen.slice(2), late.id]);
    await again.close();
  });

  test("a file replaced under it: the next publish is refused, and close() still returns", async () => {
    const path = newPath();
    const a = new FileBackplane({ path, pollMs: 0 });
    a.start(() => {});
    await a.publish(validateUpdate({ topics: "t", data: "into the first file" }));
    const replaced: string[] = [];
    a.on("replaced", (p) => replaced.push(p));
    // Removed, and another file put at the path (a restore from a copy, another process's).
    rmSync(path);
    writeFileSync(path, "another file");
    await assert.rejects(
      a.publish(validateUpdate({ topics: "t", data: "would be lost" })),
      (err) =>
        isCrierError(err, "CRIER_ERR_UNAVAILABLE") && /removed or replaced/.test(err.message),
    );
    assert.deepEqual(replaced, [path]);
    assert.equal(a.available, false);
    // lmdb-js's close of such a file can spin for ever: it is not made.
    await a.close();
  });

  test("refuses a bad option, naming it", () => {
    assert.throws(
      () => new FileBackplane({ path: newPath(), sync: "never" as "always" }),
      (err) =>
        isCrierError(err, "CRIER_ERR_INVALID_OPTION") && /sync must be one of/.test(err.message),
    );
    assert.throws(
      () => new FileBackplane({} as FileBackplaneOptions),
      (err) => isCrierError(err, "CRIER_ERR_INVALID_OPTION"),
    );
  });
});

describe("the history file's settings", () => {
  const KEY = { CRIER_JWT_KEY: "a-secret-of-at-least-thirty-two-bytes!!" };
  const refusal = (argv: string[], env: Record<string, string> = {}) => {
    try {
      parseServeConfig(argv, { ...KEY, ...env });
    } catch (err) {
      assert.ok(isCrierError(err, "CRIER_ERR_INVALID_OPTION"));
      return err.message;
    }
    assert.fail("accepted");
  };

  test("reads --history-file, --history-sync and --history-max-age, and lets --workers go without Redis", () => {
    const config = parseServeConfig(
      ["--history-file", "/var/lib/crier/h", "--history-sync", "ALWAYS", "--workers", "2"],
      { ...KEY, CRIER_HISTORY_MAX_AGE: "60000" },
    );
    assert.deepEqual(config.historyFile, {
      path: "/var/lib/crier/h",
      sync: "always",
      maxAgeMs: 60_000,
      origin: "--history-file",
    });
    assert.equal(config.workers, 2);
    assert.equal(parseServeConfig([], KEY).historyFile, undefined);
  });

  test("refuses a sync policy or an age limit without a file, a misspelt policy, and a file beside Redis", () => {
    assert.match(refusal(["--history-sync", "always"]), /^--history-sync needs --history-file/);
    assert.match(refusal([], { CRIER_HISTORY_MAX_AGE: "5" }), /^CRIER_HISTORY_MAX_AGE needs/);
    assert.match(
      refusal(["--history-file", "h", "--history-sync", "never"]),
      /^--history-sync must be one of batch, always, got "never"$/,
    );
    assert.match(
      refusal(["--history-file", "h", "--redis", "redis://127.0.0.1:6379"]),
      /^--redis and --history-file each say where the history is; give one$/,
    );
    assert.match(refusal(["--workers", "2"]), /^--workers needs --redis, --nats or --history-file/);
  });
});
