// Why the history file is LMDB: append throughput and reopen time of the candidate stores, each
// loaded from a folder of its own outside the project (CAND), 10,000 updates of ~120 bytes:
//   mkdir -p /tmp/cand && cd /tmp/cand && npm init -y && npm install lmdb
//   mkdir -p /tmp/cand-sq && cd /tmp/cand-sq && npm init -y && npm install better-sqlite3@12
//   CAND=/tmp/cand node bench/store-choice.cjs lmdb              (Node 20 and Node 24)
//   CAND=/tmp/cand-sq node bench/store-choice.cjs better-sqlite3  (loads only on the Node it was built for)
//   node bench/store-choice.cjs node:sqlite                       (Node 22.5+ only)
// "awaited": each append waits for the previous one; "concurrent": all 10,000 in flight.
const fs = require("node:fs");
const path = require("node:path");
const N = 10000;
const payload = (i) => ({
  i: `e-${i}`,
  t: ["https://example.com/books/1"],
  d: "x".repeat(100),
  ts: Date.now(),
});
const dir = fs.mkdtempSync("/tmp/store-choice-");
const which = process.argv[2];
const t = () => Number(process.hrtime.bigint()) / 1e6;
async function lmdb(sync) {
  const { open } = require(path.join(process.env.CAND, "node_modules/lmdb"));
  const file = path.join(dir, `h-${sync}.mdb`);
  let env = open({ path: file, noSubdir: true });
  let db = env.openDB("u", {});
  let s = t();
  for (let i = 0; i < N; i++) {
    await db.put(i, payload(i));
    if (sync) await db.flushed;
  }
  const seqMs = t() - s;
  s = t();
  const ps = [];
  for (let i = N; i < 2 * N; i++) ps.push(db.put(i, payload(i)));
  await Promise.all(ps);
  if (sync) await db.flushed;
  const batchMs = t() - s;
  await env.close();
  s = t();
  env = open({ path: file, noSubdir: true });
  db = env.openDB("u", {});
  let n = 0;
  for (const _ of db.getKeys({})) n++;
  const reopenMs = t() - s;
  return {
    store: `lmdb${sync ? " (fsync each)" : ""}`,
    node: process.version,
    awaitedPerSec: Math.round((N / seqMs) * 1000),
    concurrentPerSec: Math.round((N / batchMs) * 1000),
    reopenMs: +reopenMs.toFixed(1),
    n,
  };
}
function sqlite(Database, name) {
  const file = path.join(dir, `${name}.db`);
  let db = new Database(file);
  db.exec(
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE u (seq INTEGER PRIMARY KEY, v TEXT)",
  );
  const ins = db.prepare("INSERT INTO u (seq, v) VALUES (?, ?)");
  let s = t();
  for (let i = 0; i < N; i++) ins.run(i, JSON.stringify(payload(i)));
  const seqMs = t() - s;
  db.close();
  s = t();
  db = new Database(file);
  const n = db.prepare("SELECT count(*) AS n FROM u").get().n;
  const reopenMs = t() - s;
  return {
    store: name,
    node: process.version,
    awaitedPerSec: Math.round((N / seqMs) * 1000),
    reopenMs: +reopenMs.toFixed(1),
    n,
  };
}
(async () => {
  if (which === "lmdb") {
    console.log(JSON.stringify(await lmdb(false)));
    console.log(JSON.stringify(await lmdb(true)));
  }
  if (which === "better-sqlite3")
    console.log(
      JSON.stringify(
        sqlite(
          require(path.join(process.env.CAND, "node_modules/better-sqlite3")),
          "better-sqlite3 (WAL, synchronous=NORMAL)",
        ),
      ),
    );
  if (which === "node:sqlite") {
    const { DatabaseSync } = require("node:sqlite");
    console.log(JSON.stringify(sqlite(DatabaseSync, "node:sqlite (WAL, synchronous=NORMAL)")));
  }
  fs.rmSync(dir, { recursive: true });
})();
