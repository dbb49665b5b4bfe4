/**
 * A broadcaster with no features, to show what this machine's one server core can fan out at all
 * and how soon an update can arrive: the floor crier's figures are set against. Each publish
 * appends its encoded frame to a pending list and is answered with its id at once; every
 * `--interval` ms (0: every event-loop turn) the list is joined once and the same chunk is
 * written once to each subscriber socket. A subscriber's socket carries a close-delimited body
 * written straight to it, as crier's does (no chunked coding, no `ServerResponse` per write). No
 * topics (every subscriber gets everything), no history, no auth, no backpressure, no slices: a
 * flush writes every subscriber in one go.
 *
 * Usage: `node --import tsx bench/synthetic.ts --port 8080 [--host 127.0.0.1] [--interval 5]`.
 */
import http from "node:http";
import type { Socket } from "node:net";
import { pathToFileURL } from "node:url";
import { encode, flag, MERCURE } from "./baseline.ts";

const HEAD =
  "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n" +
  "connection: close\r\n\r\n:\n\n";

/** Creates the broadcaster (not yet listening); `close()` also stops its timer. */
export function createSynthetic(intervalMs: number): http.Server {
  const subscribers = new Set<Socket>();
  const pending: Buffer[] = [];
  let lastId = 0;
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const chunk = Buffer.concat(pending);
    pending.length = 0;
    for (const sub of subscribers) sub.write(chunk);
  };
  const timer = intervalMs > 0 ? setInterval(flush, intervalMs) : undefined;

  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      res.writeHead(200).end("ok\n");
    } else if (path === MERCURE && req.method === "GET") {
      const socket = req.socket;
      socket.write(HEAD, "latin1");
      subscribers.add(socket);
      socket.on("close", () => subscribers.delete(socket));
    } else if (path === MERCURE && req.method === "POST") {
      const parts: Buffer[] = [];
      req.on("data", (c: Buffer) => parts.push(c));
      req.on("end", () => {
        const form = new URLSearchParams(Buffer.concat(parts).toString("utf8"));
        const id = ++lastId;
        pending.push(encode(id, form.get("data") ?? "", form.get("type")));
        if (timer === undefined && !scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
        res.writeHead(200, { "content-type": "text/plain" }).end(String(id));
      });
    } else res.writeHead(404).end();
  });
  server.on("close", () => clearInterval(timer));
  return server;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = createSynthetic(Number(flag("interval", "5")));
  const host = flag("host", "127.0.0.1");
  server.listen(Number(flag("port", "8080")), host, () => {
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    process.stderr.write(`synthetic broadcaster listening on http://${host}:${port}\n`);
  });
  process.on("SIGTERM", () => process.exit(0));
  process.on("SIGINT", () => process.exit(0));
}
