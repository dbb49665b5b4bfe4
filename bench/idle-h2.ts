/**
 * Server memory per idle HTTP/2 event stream: crier serving HTTPS (`--tls-cert`/`--tls-key`,
 * a self-signed certificate made with openssl), 10,000 streams over 100 sessions (100 streams
 * per connection, what a browser tab with many EventSources looks like), each open once its
 * first bytes (the `:` comment) arrived; then a settle, and (VmRSS connected − VmRSS before) ÷
 * streams. The HTTP/1.1 figure is `idle-10k` of `npm run bench`.
 *
 *   npm run build && node --import tsx bench/idle-h2.ts [--sessions 100] [--streams 100] [--rounds 3]
 */
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { type ClientHttp2Session, connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  CAN_PIN,
  crierArgv,
  freePort,
  LOADGEN_CORE,
  machineFacts,
  pinned,
  SERVER_CORE,
  stopProcess,
} from "./servers.ts";
import { rssKB } from "./stats.ts";

const { values } = parseArgs({
  options: {
    sessions: { type: "string", default: "100" },
    streams: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" },
  },
});
const SESSIONS = Number(values.sessions);
const PER_SESSION = Number(values.streams);
const ROUNDS = Number(values.rounds);
const SETTLE_MS = 3000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function certificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"].concat([
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-keyout",
      key,
      "-out",
      cert,
    ]),
    { stdio: "ignore" },
  );
  return { cert, key };
}

function session(origin: string): ClientHttp2Session {
  const s = connect(origin, { rejectUnauthorized: false });
  s.on("error", () => {});
  return s;
}

async function healthy(origin: string): Promise<void> {
  const deadline = performance.now() + 15_000;
  while (performance.now() < deadline) {
    const s = session(origin);
    const ok = await new Promise<boolean>((resolve) => {
      s.once("error", () => resolve(false));
      const req = s.request({ ":path": "/healthz" });
      req.on("response", (h) => resolve(h[":status"] === 200));
      req.on("error", () => resolve(false));
    });
    s.destroy();
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`crier did not answer on ${origin}`);
}

async function round(files: { cert: string; key: string }): Promise<Record<string, number>> {
  const port = await freePort();
  const argv = crierArgv(port, undefined, ["--tls-cert", files.cert, "--tls-key", files.key]);
  argv.push("--max-subscribers", String(SESSIONS * PER_SESSION + 1));
  const child = pinned(SERVER_CORE, argv, "ignore");
  const origin = `https://127.0.0.1:${port}`;
  const sessions: ClientHttp2Session[] = [];
  try {
    await healthy(origin);
    await sleep(1000);
    const pid = child.pid as number;
    const beforeKB = rssKB(pid);
    const started = performance.now();
    let open = 0;
    await Promise.all(
      Array.from({ length: SESSIONS }, async (_, i) => {
        const s = session(origin);
        sessions.push(s);
        await once(s, "connect");
        await Promise.all(
          Array.from({ length: PER_SESSION }, async (_, j) => {
            const stream = s.request({ ":path": `/.well-known/mercure?topic=idle-${i}-${j}` });
            stream.on("error", () => {});
            await once(stream, "data");
            open++;
          }),
        );
      }),
    );
    const connectMs = performance.now() - started;
    await sleep(SETTLE_MS);
    const connectedKB = rssKB(pid);
    return {
      streams: open,
      sessions: SESSIONS,
      connectMs: Math.round(connectMs),
      rssBeforeMB: Math.round(beforeKB / 102.4) / 10,
      rssConnectedMB: Math.round(connectedKB / 102.4) / 10,
      rssBytesPerStream: Math.round(((connectedKB - beforeKB) * 1024) / open),
    };
  } finally {
    for (const s of sessions) s.destroy();
    await stopProcess(child);
  }
}

if (CAN_PIN)
  execFileSync("taskset", ["-a", "-p", "-c", String(LOADGEN_CORE), String(process.pid)], {
    stdio: "ignore",
  });
const dir = mkdtempSync(join(tmpdir(), "crier-bench-tls-"));
try {
  const files = certificate(dir);
  const runs: Record<string, number>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    runs.push(await round(files));
    process.stderr.write(`round ${r + 1}: ${JSON.stringify(runs.at(-1))}\n`);
  }
  const per = runs.map((run) => run.rssBytesPerStream as number).sort((a, b) => a - b);
  const median = per[Math.floor(per.length / 2)];
  console.log(JSON.stringify({ scenario: "idle-h2", median, runs, machine: machineFacts() }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
