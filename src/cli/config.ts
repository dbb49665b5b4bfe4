/**
 * The standalone hub's configuration: flags, each also an environment variable `CRIER_<NAME>`
 * (flags win). Resolves keys (inline secret, inline PEM, or a PEM file) and decides dev mode.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import type { JSONWebKeySet } from "jose";
import { CrierError } from "../errors.ts";
import { readJwks, readKey } from "../mercure/tokens/keys.ts";

/** Flags of `crier` (serving), with their env names and help. */
export const SERVE_FLAGS = {
  port: { type: "string", env: "CRIER_PORT", help: "port to listen on (default 8080)" },
  host: { type: "string", env: "CRIER_HOST", help: "address to bind (default: all interfaces)" },
  "jwt-key": {
    type: "string",
    env: "CRIER_JWT_KEY",
    help: "HS256 secret or PEM public key (file) for all tokens",
  },
  "publisher-jwt-key": {
    type: "string",
    env: "CRIER_PUBLISHER_JWT_KEY",
    help: "key for publishers' tokens",
  },
  "subscriber-jwt-key": {
    type: "string",
    env: "CRIER_SUBSCRIBER_JWT_KEY",
    help: "key for subscribers' tokens",
  },
  jwks: {
    type: "string",
    env: "CRIER_JWKS",
    help: "JWK Set file (JSON) of public keys, for roles without a key",
  },
  "jwt-issuer": {
    type: "string",
    env: "CRIER_JWT_ISSUER",
    help: "trusted iss of at+jwt access tokens (default: not checked)",
  },
  "jwt-audience": {
    type: "string",
    env: "CRIER_JWT_AUDIENCE",
    help: "the hub's resource id, required in aud of at+jwt tokens",
  },
  "authorization-query": {
    type: "boolean",
    env: "CRIER_AUTHORIZATION_QUERY",
    help: "accept the token in the authorization query parameter",
  },
  anonymous: { type: "boolean", env: "CRIER_ANONYMOUS", help: "allow subscribers without a token" },
  "max-subscribers": {
    type: "string",
    env: "CRIER_MAX_SUBSCRIBERS",
    help: "concurrent subscriptions before 429 (default 100000)",
  },
  subscriptions: {
    type: "boolean",
    env: "CRIER_SUBSCRIPTIONS",
    help: "publish subscription events and serve the subscriptions API",
  },
  "history-size": {
    type: "string",
    env: "CRIER_HISTORY_SIZE",
    help: "updates kept for resume (default 10000)",
  },
  "keep-alive": {
    type: "string",
    env: "CRIER_KEEP_ALIVE",
    help: "ms between keep-alive comments (default 15000, 0: off)",
  },
  "cors-origins": {
    type: "string",
    env: "CRIER_CORS_ORIGINS",
    help: "comma-separated browser origins allowed",
  },
  redis: {
    type: "string",
    env: "CRIER_REDIS",
    help: "share updates and history through Redis (redis://host:6379)",
  },
  "redis-prefix": {
    type: "string",
    env: "CRIER_REDIS_PREFIX",
    help: "prefix of the Redis keys (default crier:)",
  },
  "redis-max-len": {
    type: "string",
    env: "CRIER_REDIS_MAX_LEN",
    help: "updates the Redis stream keeps, about (default 10000)",
  },
  "redis-max-age": {
    type: "string",
    env: "CRIER_REDIS_MAX_AGE",
    help: "ms after which Redis trims an update (default 0: no limit)",
  },
  workers: {
    type: "string",
    env: "CRIER_WORKERS",
    help: "processes serving the port; needs --redis (default 1)",
  },
} as const;

export type FlagName = keyof typeof SERVE_FLAGS;

/** Everything the standalone hub needs to start. */
export interface ServeConfig {
  readonly port: number;
  readonly host: string | undefined;
  /** Key of publishers' tokens; `undefined`: the JWK Set verifies them. */
  readonly publisherKey: string | undefined;
  /** Key of subscribers' tokens; `undefined`: the JWK Set verifies them. */
  readonly subscriberKey: string | undefined;
  /** Public keys for roles without a key of their own. */
  readonly jwks: JSONWebKeySet | undefined;
  readonly jwtIssuer: string | undefined;
  readonly jwtAudience: string | undefined;
  readonly authorizationQuery: boolean;
  readonly maxSubscribers: number;
  readonly anonymous: boolean;
  /** Mercure active subscriptions: subscription events and the subscriptions API. */
  readonly subscriptions: boolean;
  readonly historySize: number;
  readonly keepAliveMs: number;
  readonly corsOrigins: readonly string[];
  /** Where updates are shared between nodes; `undefined`: in this process only. */
  readonly redis: RedisConfig | undefined;
  /** Processes serving the port (node:cluster). 1: this process only. */
  readonly workers: number;
  /** No key was configured: a throwaway secret was generated and anonymous subscribers allowed. */
  readonly devMode: boolean;
}

/** The `--redis*` flags. */
export interface RedisConfig {
  readonly url: string;
  readonly prefix: string;
  readonly maxLen: number;
  readonly maxAgeMs: number;
}

/** Reads the serving flags from `argv` and `env`; throws `CRIER_ERR_INVALID_OPTION`. */
export function parseServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServeConfig {
  const options = Object.fromEntries(
    Object.entries(SERVE_FLAGS).map(([name, flag]) => [name, { type: flag.type }]),
  ) as { [K in FlagName]: { type: (typeof SERVE_FLAGS)[K]["type"] } };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", (err as Error).message);
  }
  const get = (name: FlagName): string | undefined => {
    const value = values[name] ?? env[SERVE_FLAGS[name].env];
    return value === undefined || value === "" ? undefined : String(value);
  };
  const shared = get("jwt-key");
  let publisherKey = get("publisher-jwt-key") ?? shared;
  let subscriberKey = get("subscriber-jwt-key") ?? shared;
  const jwksFile = get("jwks");
  const jwks = jwksFile === undefined ? undefined : readJwks(jwksFile);
  const devMode = publisherKey === undefined && subscriberKey === undefined && jwks === undefined;
  if (devMode) {
    publisherKey = subscriberKey = randomBytes(32).toString("base64url");
  } else if ((publisherKey === undefined || subscriberKey === undefined) && jwks === undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "give --jwt-key, or both --publisher-jwt-key and --subscriber-jwt-key, or --jwks",
    );
  }
  if (jwks !== undefined && publisherKey !== undefined && subscriberKey !== undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "--jwks verifies the roles without a key of their own; with keys for both it would be ignored",
    );
  }
  const enabled = (name: FlagName) => {
    const value = get(name);
    return value !== undefined && value !== "false" && value !== "0";
  };
  const redisUrl = get("redis");
  const workers = integer("workers", get("workers") ?? "1", 1, 1024);
  if (workers > 1 && redisUrl === undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "--workers needs --redis: each worker would otherwise keep its own history and miss updates published to the others",
    );
  }
  return {
    port: integer("port", get("port") ?? "8080", 0, 65535),
    host: get("host"),
    publisherKey: publisherKey === undefined ? undefined : readKey(publisherKey),
    subscriberKey: subscriberKey === undefined ? undefined : readKey(subscriberKey),
    jwks,
    jwtIssuer: get("jwt-issuer"),
    jwtAudience: get("jwt-audience"),
    authorizationQuery: enabled("authorization-query"),
    maxSubscribers: integer("max-subscribers", get("max-subscribers") ?? "100000", 1, 100_000_000),
    anonymous: devMode || enabled("anonymous"),
    subscriptions: enabled("subscriptions"),
    historySize: integer("history-size", get("history-size") ?? "10000", 0, 10_000_000),
    keepAliveMs: integer("keep-alive", get("keep-alive") ?? "15000", 0, 3_600_000),
    corsOrigins: (get("cors-origins") ?? "")
      .split(",")
      .map((o) => o.trim())
      .filter((o) => o !== ""),
    redis:
      redisUrl === undefined
        ? undefined
        : {
            url: redisUrl,
            prefix: get("redis-prefix") ?? "crier:",
            maxLen: integer("redis-max-len", get("redis-max-len") ?? "10000", 1, 1_000_000_000),
            maxAgeMs: integer("redis-max-age", get("redis-max-age") ?? "0", 0, 2 ** 40),
          },
    workers,
    devMode,
  };
}

function integer(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `--${name} must be an integer from ${min} to ${max}, got "${text}"`,
    );
  }
  return value;
}
