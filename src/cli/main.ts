#!/usr/bin/env node
/**
 * The `crier` command: serves the hub (default), or publishes, subscribes and mints tokens
 * against one. Exit codes: 0 done, 1 failed at run time, 2 bad usage.
 */
import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { createParser } from "eventsource-parser";
import type { Backplane } from "../backplane/backplane.ts";
import { isCrierError } from "../errors.ts";
import { createHub, type Hub } from "../hub.ts";
import { createHubServer, shutdown } from "../mercure/http/server.ts";
import { MERCURE_PATH } from "../mercure/paths.ts";
import { readKey } from "../mercure/tokens/keys.ts";
import { mintToken } from "../mercure/tokens/mint.ts";
import { parseServeConfig, type RedisConfig, SERVE_FLAGS } from "./config.ts";
import { runWorkers } from "./workers.ts";

const USAGE = `Usage:
  crier [flags]                      serve the hub
  crier publish TOPIC DATA [--url U] [--token T] [--id ID] [--type T] [--private]
  crier subscribe TOPIC... [--url U] [--token T] [--last-event-id ID]
  crier token [--publish SEL]... [--subscribe SEL]... [--ttl SECONDS]

Flags of the hub (each also an environment variable):
${Object.entries(SERVE_FLAGS)
  .map(([name, f]) => `  --${name.padEnd(20)} ${f.env.padEnd(26)} ${f.help}`)
  .join("\n")}

publish/subscribe/token sign with --jwt-key or CRIER_JWT_KEY when no --token is given.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "publish":
      return publish(rest);
    case "subscribe":
      return subscribe(rest);
    case "token":
      return token(rest);
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    default:
      return serve(argv);
  }
}

async function serve(argv: string[]): Promise<number> {
  const config = parseServeConfig(argv, process.env);
  if (config.workers > 1 && cluster.isPrimary) {
    // Dev mode: one throwaway key for all workers, so a token works on any of them.
    const env = config.devMode
      ? { CRIER_JWT_KEY: config.publisherKey as string, CRIER_ANONYMOUS: "1" }
      : ({} as Record<string, string>);
    if (config.devMode) {
      await announceDevMode(defaultUrlOf(config.port), config.publisherKey as string);
    }
    return runWorkers(config.workers, env, log);
  }
  const backplane = config.redis === undefined ? undefined : await redisBackplane(config.redis);
  const hub = createHub({
    keepAliveMs: config.keepAliveMs,
    history: { maxEvents: config.historySize },
    backplane,
  });
  if (config.redis !== undefined) await connected(hub, config.redis);
  const server = createHubServer({
    hub,
    publisherKey: config.publisherKey,
    subscriberKey: config.subscriberKey,
    jwks: config.jwks,
    jwtIssuer: config.jwtIssuer,
    jwtAudience: config.jwtAudience,
    authorizationQuery: config.authorizationQuery,
    maxSubscribers: config.maxSubscribers,
    anonymous: config.anonymous,
    corsOrigins: config.corsOrigins,
    subscriptions: config.subscriptions,
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, resolve);
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.port;
  const url = `http://${config.host ?? "localhost"}:${port}${MERCURE_PATH}`;
  log(`listening on ${url}`);
  if (config.devMode) await announceDevMode(url, config.publisherKey as string);
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

async function connected(hub: Hub, config: RedisConfig): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`cannot reach Redis at ${redact(config.url)}`)),
      10_000,
    );
  });
  try {
    await Promise.race([hub.ready(), timeout]);
  } catch (err) {
    await hub.close();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}

function defaultUrlOf(port: number): string {
  return `http://localhost:${port}${MERCURE_PATH}`;
}

async function announceDevMode(url: string, key: string): Promise<void> {
  const token = await mintToken(key, { publish: ["*"], subscribe: ["*"] });
  log(`DEV MODE: no --jwt-key given, so a throwaway key was generated and anonymous subscribers are allowed.
  Do not use this in production: set --jwt-key (or CRIER_JWT_KEY).
  Subscribe:  curl -N '${url}?topic=demo'
  Publish:    curl -d topic=demo -d data=hello -H 'Authorization: Bearer ${token}' ${url}`);
}

async function publish(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...clientFlags,
      id: { type: "string" },
      type: { type: "string" },
      private: { type: "boolean" },
    },
  });
  const [topic, data] = positionals;
  if (topic === undefined || data === undefined || positionals.length > 2)
    return usage("publish needs TOPIC and DATA");
  const form = new URLSearchParams({ topic, data });
  if (values.id !== undefined) form.set("id", values.id);
  if (values.type !== undefined) form.set("type", values.type);
  if (values.private === true) form.set("private", "on");
  const res = await fetch(values.url ?? defaultUrl(), {
    method: "POST",
    body: form,
    headers: { Authorization: `Bearer ${await clientToken(values, { publish: [topic] })}` },
  });
  const body = (await res.text()).trim();
  if (!res.ok) {
    log(`publish failed: ${res.status} ${body}`);
    return 1;
  }
  process.stdout.write(`${body}\n`);
  return 0;
}

async function subscribe(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...clientFlags, "last-event-id": { type: "string" } },
  });
  if (positionals.length === 0) return usage("subscribe needs at least one TOPIC");
  const url = new URL(values.url ?? defaultUrl());
  for (const topic of positionals) url.searchParams.append("topic", topic);
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (values.token !== undefined || keyOf(values) !== undefined) {
    headers.Authorization = `Bearer ${await clientToken(values, { subscribe: positionals })}`;
  }
  if (values["last-event-id"] !== undefined) headers["Last-Event-ID"] = values["last-event-id"];
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  process.once("SIGTERM", () => controller.abort());
  try {
    const res = await fetch(url, { headers, signal: controller.signal });
    if (!res.ok || res.body === null) {
      log(`subscribe failed: ${res.status} ${(await res.text()).trim()}`);
      return 1;
    }
    const parser = createParser({
      onEvent: (event) =>
        process.stdout.write(
          `${JSON.stringify({ id: event.id, type: event.event, data: event.data })}\n`,
        ),
    });
    const decoder = new TextDecoder();
    for await (const chunk of res.body) parser.feed(decoder.decode(chunk, { stream: true }));
    return 0;
  } catch (err) {
    if (controller.signal.aborted) return 0;
    throw err;
  }
}

async function token(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "jwt-key": { type: "string" },
      publish: { type: "string", multiple: true },
      subscribe: { type: "string", multiple: true },
      ttl: { type: "string" },
    },
  });
  const key = keyOf(values);
  if (key === undefined) return usage("token needs --jwt-key or CRIER_JWT_KEY");
  if (values.ttl !== undefined && !/^\d+$/.test(values.ttl))
    return usage("--ttl must be whole seconds");
  const jwt = await mintToken(key, {
    publish: values.publish,
    subscribe: values.subscribe,
    ttlSeconds: values.ttl === undefined ? undefined : Number(values.ttl),
  });
  process.stdout.write(`${jwt}\n`);
  return 0;
}

const clientFlags = {
  url: { type: "string" },
  token: { type: "string" },
  "jwt-key": { type: "string" },
} as const;

function defaultUrl(): string {
  return `http://localhost:${process.env.CRIER_PORT ?? "8080"}${MERCURE_PATH}`;
}

function keyOf(values: { "jwt-key"?: string | undefined }): string | undefined {
  const key = values["jwt-key"] ?? process.env.CRIER_JWT_KEY;
  return key === undefined || key === "" ? undefined : readKey(key);
}

async function clientToken(
  values: { token?: string | undefined; "jwt-key"?: string | undefined },
  grant: { publish?: string[]; subscribe?: string[] },
): Promise<string> {
  if (values.token !== undefined) return values.token;
  const key = keyOf(values);
  if (key === undefined)
    throw new UsageError("give --token, or --jwt-key (or CRIER_JWT_KEY) to sign one");
  return mintToken(key, { ...grant, ttlSeconds: 3600 });
}

class UsageError extends Error {}

function usage(message: string): number {
  process.stderr.write(`crier: ${message}\n\n${USAGE}`);
  return 2;
}

function log(message: string): void {
  process.stderr.write(`crier: ${message}\n`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (
      err instanceof UsageError ||
      isCrierError(err, "CRIER_ERR_INVALID_OPTION") ||
      (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
    ) {
      process.exit(usage((err as Error).message));
    }
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
