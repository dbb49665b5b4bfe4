/**
 * Shared pieces of the Redis tests: whether Redis is there (skip locally, fail in CI), hub
 * processes started from the CLI, a small SSE client that can move between nodes, a publisher,
 * and a unique key prefix per test that is deleted afterwards.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { createParser } from "eventsource-parser";
import { Redis } from "ioredis";
import { keyBase } from "../src/history/redis-keys.ts";
import { mintToken } from "../src/mercure/tokens/mint.ts";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const JWT_KEY = "redis-tests-secret-of-at-least-32-bytes!";
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * `undefined` when Redis answers; otherwise the reason to skip `suite`. With CI=true a missing
 * Redis is an error, so the suite fails instead of passing silently.
 */
export async function redisSkipReason(suite: string): Promise<string | undefined> {
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  let cause: Error | undefined;
  redis.on("error", (err: Error) => {
    cause = err;
  });
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (err) {
    const reason = `${suite}: no Redis at ${REDIS_URL} (${(cause ?? (err as Error)).message}); start one or set REDIS_URL (default redis://127.0.0.1:6379) to run this suite`;
    if (process.env.CI === "true") throw new Error(reason);
    return reason;
  } finally {
    redis.disconnect();
  }
}

/** A key prefix no other test run uses. */
export function uniquePrefix(name: string): string {
  return `crier-test:${name}:${process.pid}:${randomBytes(4).toString("hex")}:`;
}

/** Deletes every key under `prefix` (never anything else). */
export async function deletePrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, "MATCH", `${keyBase(prefix)}*`, "COUNT", 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

/** The ids of the stream under `prefix`, in stream order: what every subscriber must end with. */
export async function streamIds(prefix: string, url = REDIS_URL): Promise<string[]> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const entries = await redis.xrange(`${keyBase(prefix)}stream`, "-", "+");
    return entries.map(([position, fields]) => {
      const field = (name: string) => fields[fields.indexOf(name) + 1] as string;
      const payload = JSON.parse(field("u")) as { i?: string };
      return payload.i ?? `#${field("e")}:${position}`;
    });
  } finally {
    redis.disconnect();
  }
}

/** A hub started from the CLI. */
export interface HubProcess {
  readonly url: string;
  readonly child: ChildProcess;
  readonly log: string[];
  /** Sends SIGTERM (or `signal`) and waits for the exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const hubs = new Set<HubProcess>();

/** Starts `crier` with Redis under `prefix`; resolves once it listens. */
export async function startHub(
  prefix: string,
  options: { redisUrl?: string; args?: string[]; port?: number; engine?: string[] } = {},
): Promise<HubProcess> {
  const args = [
    "--import",
    "tsx",
    "src/cli/main.ts",
    ["--host", "127.0.0.1", "--port", String(options.port ?? 0)],
    ["--jwt-key", JWT_KEY, "--anonymous", "--keep-alive", "500"],
    // `engine`: the flags of another engine than Redis under `prefix` (e.g. `--nats …`).
    options.engine ?? ["--redis", options.redisUrl ?? REDIS_URL, "--redis-prefix", prefix],
    options.args ?? [],
  ].flat();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const url = await new Promise<string>((resolve, reject) => {
    // A hub that starts too late would outlive the test, holding its port and Redis keys.
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`hub did not start:\n${log.join("")}`));
    }, 20_000);
    const read = (chunk: string) => {
      log.push(chunk);
      const match = /listening on (http:\/\/[^\s"]+)/.exec(log.join(""));
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    };
    // The log is on stdout, the command's own messages on stderr.
    child.stdout?.setEncoding("utf8").on("data", read);
    child.stderr?.setEncoding("utf8").on("data", read);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${code} before listening:\n${log.join("")}`));
    });
  });
  const hub: HubProcess = {
    url,
    child,
    log,
    async stop(signal = "SIGTERM") {
      hubs.delete(hub);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  hubs.add(hub);
  return hub;
}

/** Kills every hub still running (for `after`). */
export async function stopAllHubs(): Promise<void> {
  await Promise.all([...hubs].map((hub) => hub.stop("SIGKILL")));
}

let token: Promise<string> | undefined;

/** Publishes one update; never throws: a network failure is status 0. */
export async function publish(
  url: string,
  fields: { topic: string; data: string; id?: string },
): Promise<{ status: number; body: string; ms: number }> {
  token ??= mintToken(JWT_KEY, { publish: ["*"] });
  const form = new URLSearchParams({ topic: fields.topic, data: fields.data });
  if (fields.id !== undefined) form.set("id", fields.id);
  const start = performance.now();
  try {
    const res = await fetch(url, {
      method: "POST",
      body: form,
      headers: { Authorization: `Bearer ${await token}` },
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.text()).trim();
    return { status: res.status, body, ms: performance.now() - start };
  } catch (err) {
    return { status: 0, body: String(err), ms: performance.now() - start };
  }
}

/** An SSE subscriber that records every event id and can resume on another node. */
export class SseClient {
  readonly ids: string[] = [];
  readonly data: string[] = [];
  comments = 0;
  /** Times the stream ended (node killed, hub closed). */
  ends = 0;
  /** The `Last-Event-ID` response header of the latest connection. */
  resumedFrom: string | null = null;
  #controller: AbortController | undefined;
  #ended: Promise<void> = Promise.resolve();

  constructor(readonly topic: string) {}

  get lastId(): string | undefined {
    return this.ids.at(-1);
  }

  /** Connects to `url` (resuming after the last id received, or `lastEventId`). */
  async connect(url: string, lastEventId = this.lastId): Promise<void> {
    this.#controller = new AbortController();
    const target = new URL(url);
    target.searchParams.set("topic", this.topic);
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (lastEventId !== undefined) headers["Last-Event-ID"] = lastEventId;
    const res = await fetch(target, { headers, signal: this.#controller.signal });
    if (!res.ok || res.body === null) throw new Error(`subscribe answered ${res.status}`);
    this.resumedFrom = res.headers.get("last-event-id");
    const parser = createParser({
      onEvent: (event) => {
        this.ids.push(event.id as string);
        this.data.push(event.data);
      },
      onComment: () => {
        this.comments++;
      },
    });
    const body = res.body;
    this.#ended = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of body) parser.feed(decoder.decode(chunk, { stream: true }));
      } catch {
        // the node went away or we aborted
      }
      this.ends++;
    })();
  }

  /** Resolves when the current connection ends. */
  ended(): Promise<void> {
    return this.#ended;
  }

  close(): void {
    this.#controller?.abort();
  }
}

/** Polls `check` until true or `ms` pass; throws with `what` on timeout. */
export async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** True when Debian's redis-server is installed (throwaway servers for tests that stop one). */
export function hasRedisServer(): boolean {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * A throwaway redis-server without persistence, so a restart loses everything. Redis cannot
 * listen on port 0 and say which port it got, so without `port` it tries random ports until
 * one binds (no listen-close-reuse race: a taken port makes redis-server exit, and the next is
 * tried). `args` adds flags for the port it tries (a cluster node's config file, `--replicaof`).
 */
export async function startRedis(
  port?: number,
  args: (port: number) => string[] = () => [],
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const tried = port ?? 20_000 + Math.floor(Math.random() * 40_000);
    const child = spawn(
      "redis-server",
      [
        ["--port", String(tried), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        args(tried),
      ].flat(),
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    let out = "";
    const ready = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 5000);
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
        if (out.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) return { child, port: tried };
    if (port !== undefined || attempt >= 10) throw new Error(`redis-server did not start: ${out}`);
  }
}

/** A TCP proxy in front of Redis that can be cut (connections dropped, port refused) and restored. */
export class CuttableProxy {
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;

  constructor(readonly target: URL) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = createConnection(Number(this.target.port || 6379), this.target.hostname);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on("close", () => this.#sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  async cut(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}
