/**
 * `crier` (serving): one process, or `--workers N` processes behind node:cluster. Stops on
 * SIGTERM/SIGINT: stops accepting, sends every subscriber a `retry` hint, exits 0 within 5 s.
 */
import cluster from "node:cluster";
import type { Backplane } from "../backplane/backplane.ts";
import { createHub, type Hub } from "../hub.ts";
import { createHubServer, createSecureHubServer, shutdown } from "../mercure/http/server.ts";
import { MERCURE_PATH } from "../mercure/paths.ts";
import { mintToken } from "../mercure/tokens/mint.ts";
import { parseServeConfig, type RedisConfig } from "./config.ts";
import { log } from "./output.ts";
import { redact } from "./urls.ts";
import { runWorkers } from "./workers.ts";

/** Serves until a signal; resolves with the exit code. */
export async function serve(argv: string[]): Promise<number> {
  const config = parseServeConfig(argv, process.env);
  if (config.workers > 1 && cluster.isPrimary) {
    // Dev mode: one throwaway key for all workers, so a token works on any of them.
    const key = config.handler.publisherKey as string;
    const env = config.devMode
      ? { CRIER_JWT_KEY: key, CRIER_ANONYMOUS: "1" }
      : ({} as Record<string, string>);
    if (config.devMode) await announceDevMode(defaultUrlOf(config), key);
    return runWorkers(config.workers, env, log);
  }
  const backplane = config.redis === undefined ? undefined : await redisBackplane(config.redis);
  const hub = createHub({ ...config.hub, backplane });
  if (config.redis !== undefined) await connected(hub, config.redis);
  const server =
    config.tls === undefined
      ? createHubServer({ hub, ...config.handler })
      : createSecureHubServer({ hub, ...config.handler, ...config.tls });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, resolve);
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.port;
  const scheme = config.tls === undefined ? "http" : "https";
  const url = `${scheme}://${config.host ?? "localhost"}:${port}${MERCURE_PATH}`;
  log(`listening on ${url}`);
  if (config.devMode) await announceDevMode(url, config.handler.publisherKey as string);
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log(`${signal}: closing subscribers and stopping`);
      shutdown(server, hub, 5000).then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}

// Loaded only when asked for, so a hub without --redis never loads the Redis client.
async function redisBackplane(config: RedisConfig): Promise<Backplane> {
  const { RedisBackplane } = await import("../backplane/redis.ts");
  const backplane = new RedisBackplane(config);
  backplane.on("down", (err) => log(`Redis unavailable (${err.message}); publishes answer 503`));
  backplane.on("up", () => log("Redis available again; resuming"));
  backplane.on("epoch", (epoch) =>
    log(`Redis stream is new (epoch ${epoch}); older ids resume from earliest`),
  );
  return backplane;
}

// The hub bounds its own wait (readyTimeoutMs); this only names Redis in the message.
async function connected(hub: Hub, config: RedisConfig): Promise<void> {
  try {
    await hub.ready();
  } catch (err) {
    await hub.close();
    throw new Error(`cannot reach Redis at ${redact(config.url)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function defaultUrlOf(config: { port: number; tls: unknown }): string {
  return `${config.tls === undefined ? "http" : "https"}://localhost:${config.port}${MERCURE_PATH}`;
}

// The dev-mode token lives as long as a working day; its key dies with the process anyway.
const DEV_TOKEN_TTL_SECONDS = 24 * 3600;

async function announceDevMode(url: string, key: string): Promise<void> {
  const token = await mintToken(key, {
    publish: ["*"],
    subscribe: ["*"],
    ttlSeconds: DEV_TOKEN_TTL_SECONDS,
  });
  const expires = new Date(Date.now() + DEV_TOKEN_TTL_SECONDS * 1000).toISOString();
  log(`DEV MODE: no --jwt-key given, so a throwaway key was generated and anonymous subscribers are allowed.
  Do not use this in production: set --jwt-key (or CRIER_JWT_KEY).
  Subscribe:  curl -N '${url}?topic=demo'
  Publish:    curl -d topic=demo -d data=hello -H 'Authorization: Bearer ${token}' ${url}
  This token expires in 24 hours (${expires}); restart the hub for a new key and token.`);
}
