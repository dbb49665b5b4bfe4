/**
 * The naive broadcaster Crier is measured against: plain `node:http`, the same URLs as a Mercure
 * hub, and the obvious design. Each published update is written to each subscriber the moment
 * it arrives — one `res.write` per event per subscriber, no batching, no queue, no backpressure
 * (a stalled subscriber grows this process; that is the point of comparing). Auth is ignored.
 *
 * It is deliberately not a straw man: each event is encoded once and the same Buffer goes to
 * every subscriber, and keep-alive comes from one process-wide timer. What it lacks is batching
 * of writes per socket, which is what the hub's design claims as its advantage.
 *
 * Usage: `node --import tsx bench/baseline.ts --port 8080 [--host 127.0.0.1] [--keep-alive ms]`.
 */
import http from "node:http";
import { pathToFileURL } from "node:url";

/** Options for {@link createBaseline}. */
export interface BaselineOptions {
  /** Interval of `:` keep-alive comments to every subscriber, ms. Default 15000; 0 turns off. */
  keepAliveMs?: number;
}

/** The hub URL both reference servers answer on, as a Mercure hub does. */
export const MERCURE = "/.well-known/mercure";

/** Encodes an SSE event; data is split on CR, LF and CRLF so a value cannot inject fields. */
export function encode(id: number, data: string, type: string | null): Buffer {
  const lines = data.split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`);
  return Buffer.from(
    `${type ? `event: ${type.replace(/[\r\n]/g, "")}\n` : ""}id: ${id}\n${lines.join("")}\n`,
  );
}

/** Creates the baseline server (not yet listening); `close()` also stops its timer. */
export function createBaseline(opts: BaselineOptions = {}): http.Server {
  const topics = new Map<string, Set<http.ServerResponse>>();
  let lastId = 0;

  const subscribe = (url: URL, req: http.IncomingMessage, res: http.ServerResponse): void => {
    const wanted = url.searchParams.getAll("topic");
    if (wanted.length === 0) {
      res.writeHead(400, { "content-type": "text/plain" }).end("missing topic\n");
      return;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    });
    res.write(":\n\n");
    for (const t of wanted) {
      const set = topics.get(t) ?? new Set();
      topics.set(t, set.add(res));
    }
    req.on("close", () => {
      for (const t of wanted) topics.get(t)?.delete(res);
    });
  };

  const publish = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const form = new URLSearchParams(Buffer.concat(parts).toString("utf8"));
      const id = ++lastId;
      const bytes = encode(id, form.get("data") ?? "", form.get("type"));
      const sent = new Set<http.ServerResponse>();
      for (const t of form.getAll("topic")) {
        for (const sub of topics.get(t) ?? []) {
          if (sent.has(sub)) continue;
          sent.add(sub);
          sub.write(bytes); // the naive part: one write per event per subscriber, result ignored
        }
      }
      res.writeHead(200, { "content-type": "text/plain" }).end(String(id));
    });
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/healthz") res.writeHead(200).end("ok\n");
    else if (url.pathname === MERCURE && req.method === "GET") subscribe(url, req, res);
    else if (url.pathname === MERCURE && req.method === "POST") publish(req, res);
    else res.writeHead(404).end();
  });
  const keepAliveMs = opts.keepAliveMs ?? 15_000;
  if (keepAliveMs > 0) {
    const timer = setInterval(() => {
      for (const set of topics.values()) for (const sub of set) sub.write(":\n\n");
    }, keepAliveMs).unref();
    server.on("close", () => clearInterval(timer));
  }
  return server;
}

/** Reads `--name value` from argv. */
export function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return (i >= 0 ? process.argv[i + 1] : undefined) ?? fallback;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = createBaseline({ keepAliveMs: Number(flag("keep-alive", "15000")) });
  const host = flag("host", "127.0.0.1");
  server.listen(Number(flag("port", "8080")), host, () => {
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    process.stderr.write(`baseline listening on http://${host}:${port}\n`);
  });
  // Subscribers never end on their own, so exit rather than wait for close() to drain them.
  process.on("SIGTERM", () => process.exit(0));
  process.on("SIGINT", () => process.exit(0));
}
