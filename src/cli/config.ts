/**
 * The standalone hub's configuration, read from flags and `CRIER_*` environment variables through
 * the one settings table (`settings.ts`); the keys and dev mode come from `keys.ts`. The result is shaped as the options of what it configures, so
 * serving spreads it rather than copying it field by field.
 */

import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { CrierError } from "../errors.ts";
import { HISTORY_SYNCS, type HistorySync } from "../history/file-defaults.ts";
import { MIN_MAX_AGE_MS } from "../history/nats-defaults.ts";
import type { HubOptions } from "../hub.ts";
import type { HubServerOptions } from "../mercure/http/limits.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../ops/levels.ts";
import { integerOption } from "../options.ts";
import { keysOf } from "./keys.ts";
import { SETTINGS, type SettingName } from "./settings.ts";
import { readTlsPair, type TlsFiles } from "./tls.ts";
import { corsOriginsOf, natsUrlOf, publicOriginOf, redisUrlOf } from "./urls.ts";

/** Everything the standalone hub needs to start. */
export interface ServeConfig {
  readonly port: number;
  readonly host: string | undefined;
  /** Where `host` came from (`--host`, `CRIER_HOST`), for a message about it. */
  readonly hostSetting: string;
  /** Options of the hub (its backplane comes from {@link redis}). */
  readonly hub: Pick<HubOptions, "keepAliveMs" | "history" | "pushback" | "flushWindowMs">;
  /** Options of the Mercure handler and its server, all but the hub. */
  readonly handler: Omit<HubServerOptions, "hub">;
  /** Where updates are shared between nodes; `undefined`: in this process only. */
  readonly redis: RedisConfig | undefined;
  /** The history file; `undefined`: the history is in memory (or in Redis). */
  readonly historyFile: HistoryFileConfig | undefined;
  /** Or NATS JetStream (never both). */
  readonly nats: NatsConfig | undefined;
  /** Certificate and key (PEM) to serve HTTPS with HTTP/2; `undefined`: plain HTTP/1.1. */
  readonly tls: TlsConfig | undefined;
  /** Processes serving the port (node:cluster). 1: this process only. */
  readonly workers: number;
  /** No key was configured: a throwaway secret was generated and anonymous subscribers allowed. */
  readonly devMode: boolean;
  /** Metrics, logs and drain. */
  readonly ops: OpsConfig;
}

/** The `--metrics*`, `--dashboard`, `--log-*` and `--drain-timeout` flags. */
export interface OpsConfig {
  readonly metrics: boolean;
  /** A port of their own for the metrics; `undefined`: the hub's port. */
  readonly metricsPort: number | undefined;
  /** The live dashboard at `/` (on in dev mode). */
  readonly dashboard: boolean;
  readonly logLevel: LogLevel;
  /** `undefined`: pretty on a terminal, else JSON. */
  readonly logFormat: LogFormat | undefined;
  readonly drainTimeoutMs: number;
}

/** The `--redis*` flags. */
export interface RedisConfig {
  readonly url: string;
  readonly prefix: string;
  readonly maxLen: number;
  readonly maxAgeMs: number;
  /** Replicas that must hold a publish before it is acknowledged (`WAIT`); 0: none. */
  readonly waitReplicas: number;
  /** Resume reads in flight at once, entries per replay page, and a replay read's timeout. */
  readonly replayConcurrency: number;
  readonly replayPageSize: number;
  readonly replayTimeoutMs: number;
}

/** The `--history-file`, `--history-sync` and `--history-max-age` flags. */
export interface HistoryFileConfig {
  readonly path: string;
  readonly sync: HistorySync;
  readonly maxAgeMs: number;
  /** Where the path was given (`--history-file` or `CRIER_HISTORY_FILE`), for messages. */
  readonly origin: string;
}

/** The `--nats*` flags, and `--history-size` as the stream's length. */
export interface NatsConfig {
  readonly url: string;
  readonly stream: string;
  readonly maxLen: number;
  readonly maxAgeMs: number;
}

/** The `--tls-*` flags, read. */
export interface TlsConfig {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Where they were read from: read again on SIGHUP. */
  readonly files: TlsFiles;
  /** Streams one HTTP/2 connection may hold at once. */
  readonly maxConcurrentStreams: number;
}

/** The spellings a boolean setting accepts, any case; a bare flag means true. */
export const BOOLEAN_SPELLINGS = {
  true: ["1", "true", "yes", "on"],
  false: ["0", "false", "no", "off"],
} as const;

/** The settings as given: flags over environment, defaults applied, each read by its type. */
export class Settings {
  readonly #values: Record<string, string | boolean | undefined>;
  readonly #env: NodeJS.ProcessEnv;

  constructor(argv: readonly string[], env: NodeJS.ProcessEnv) {
    const options = Object.fromEntries(
      Object.entries(SETTINGS).map(([name, s]) => [
        name,
        { type: s.type === "boolean" ? "boolean" : "string" } as const,
      ]),
    );
    // `--anonymous=no`: node's parser takes no value after a boolean flag, so those are read
    // here. The last of a switch's flags wins, spelled or bare, as for any other setting.
    const spelled: Record<string, string> = {};
    const args = argv.filter((arg) => {
      const match = /^--([^=]+)=(.*)$/s.exec(arg);
      const name = (match?.[1] ?? arg.slice(2)) as SettingName;
      if (!arg.startsWith("--") || SETTINGS[name]?.type !== "boolean") return true;
      if (match === null) {
        delete spelled[name]; // a bare one after a spelled one
        return true;
      }
      spelled[name] = match[2] as string;
      return false;
    });
    try {
      ({ values: this.#values } = parseArgs({
        args,
        options,
        strict: true,
        allowPositionals: false,
      }));
    } catch (err) {
      throw new CrierError("CRIER_ERR_INVALID_OPTION", (err as Error).message, { cause: err });
    }
    Object.assign(this.#values, spelled);
    this.#env = env;
  }

  /** The raw text of a setting (flag, else variable, else default); `undefined`: unset. */
  text(name: SettingName): string | undefined {
    return this.#given(name).text;
  }

  integer(name: SettingName): number {
    const setting = SETTINGS[name];
    const { text = "", from } = this.#given(name);
    const value = /^\d+$/.test(text) ? Number(text) : text;
    return integerOption(from, value, 0, setting.min, setting.max);
  }

  /** A boolean setting: one of {@link BOOLEAN_SPELLINGS}; anything else is refused. */
  boolean(name: SettingName): boolean {
    const { text, from } = this.#given(name);
    const word = (text ?? "false").toLowerCase();
    if ((BOOLEAN_SPELLINGS.true as readonly string[]).includes(word)) return true;
    if ((BOOLEAN_SPELLINGS.false as readonly string[]).includes(word)) return false;
    const accepted = [0, 1, 2, 3]
      .map((i) => `${BOOLEAN_SPELLINGS.true[i]}/${BOOLEAN_SPELLINGS.false[i]}`)
      .join(", ");
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${from} must be one of ${accepted} (any case), got ${JSON.stringify(text)}`,
    );
  }

  /** A setting that is one of `choices` (any case); anything else is refused. */
  choice<T extends string>(name: SettingName, choices: readonly T[]): T | undefined {
    const { text, from } = this.#given(name);
    if (text === undefined) return undefined;
    const word = text.toLowerCase();
    if ((choices as readonly string[]).includes(word)) return word as T;
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${from} must be one of ${choices.join(", ")}, got ${JSON.stringify(text)}`,
    );
  }

  /** Whether a setting's variable is set but empty (and its flag absent): read as unset. */
  isEmptyVariable(name: SettingName): boolean {
    return this.#values[name] === undefined && this.#env[SETTINGS[name].env] === "";
  }

  /** Whether a setting was given at all (its flag, or its variable non-empty). */
  isGiven(name: SettingName): boolean {
    const flag = this.#values[name];
    return flag !== undefined || (this.#env[SETTINGS[name].env] ?? "") !== "";
  }

  /** Where a setting was given: its flag, or its variable when only that is set. */
  origin(name: SettingName): string {
    return this.#given(name).from;
  }

  // The text of a setting and where it came from (the flag or the variable), for messages.
  #given(name: SettingName): { text: string | undefined; from: string } {
    const flag = this.#values[name];
    const variable = SETTINGS[name].env;
    const [value, from] =
      flag === undefined ? [this.#env[variable], variable] : [flag, `--${name}`];
    // `--jwt-key "$KEY"` with KEY unset: an empty flag is a mistake, never "use the default".
    if (value === "" && flag !== undefined) {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        `${from} is empty: give a value, or leave it out`,
      );
    }
    if (value === undefined || value === "") {
      return { text: SETTINGS[name].default, from: `--${name}` };
    }
    return { text: String(value), from };
  }
}

/** The variable a primary in dev mode gives its workers its throwaway key in. */
export const WORKER_DEV_KEY = "CRIER_WORKER_DEV_KEY";

/** Reads the serving flags from `argv` and `env`; throws `CRIER_ERR_INVALID_OPTION`. */
export function parseServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServeConfig {
  const s = new Settings(argv, env);
  refuseOrphans(s);
  refuseContradictions(s);
  const keys = keysOf(s);
  const { jwks, devMode } = keys;
  // A worker of a hub in dev mode: the primary's throwaway key, so that its token works on
  // every worker (the primary sets this for its workers alone).
  const workerKey = env[WORKER_DEV_KEY];
  const publisherKey = devMode && workerKey ? workerKey : keys.publisherKey;
  const subscriberKey = devMode && workerKey ? workerKey : keys.subscriberKey;
  const redisText = s.text("redis");
  const redisUrl = redisText === undefined ? undefined : redisUrlOf(redisText, s.origin("redis"));
  const historyFile = historyFileOf(s);
  const nats = natsOf(s);
  const engines = [
    redisUrl === undefined ? undefined : s.origin("redis"),
    nats === undefined ? undefined : s.origin("nats"),
    historyFile?.origin,
  ].filter((origin) => origin !== undefined);
  if (engines.length > 1) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${engines.join(" and ")} each say where the history is; give one`,
    );
  }
  const workers = s.integer("workers");
  if (workers > 1 && engines.length === 0) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${s.origin("workers")} needs --redis, --nats or --history-file: each worker would otherwise keep its own history and miss updates published to the others`,
    );
  }
  return {
    port: s.integer("port"),
    host: hostOf(s),
    hostSetting: s.origin("host"),
    hub: {
      keepAliveMs: s.integer("keep-alive"),
      history: { maxEvents: s.integer("history-size") },
      pushback: pushbackOf(s),
      flushWindowMs: s.integer("flush-window"),
    },
    handler: {
      publisherKey,
      subscriberKey,
      jwks,
      jwtIssuer: s.text("jwt-issuer"),
      jwtAudience: s.text("jwt-audience"),
      authorizationQuery: s.boolean("authorization-query"),
      allowWeakKey: s.boolean("allow-weak-key"),
      maxSubscribers: s.integer("max-subscribers"),
      // Read even in dev mode, so a misspelt value is refused there too.
      anonymous: s.boolean("anonymous") || devMode,
      subscriptions: s.boolean("subscriptions"),
      corsOrigins: corsOriginsOf(s.text("cors-origins") ?? "", s.origin("cors-origins")),
      publicOrigin: publicOriginOf(s.text("public-origin"), s.origin("public-origin")),
      maxSubscribersPerIp: s.integer("max-subscribers-per-ip"),
      maxSubscribeRate: s.integer("max-subscribe-rate"),
      maxConnectionLifetimeMs: s.integer("max-connection-lifetime"),
      headersTimeoutMs: s.integer("headers-timeout"),
      requestTimeoutMs: s.integer("request-timeout"),
    },
    redis:
      redisUrl === undefined
        ? undefined
        : {
            url: redisUrl,
            prefix: s.text("redis-prefix") as string,
            maxLen: s.integer("redis-max-len"),
            maxAgeMs: s.integer("redis-max-age"),
            waitReplicas: s.integer("redis-wait-replicas"),
            replayConcurrency: s.integer("redis-replay-concurrency"),
            replayPageSize: s.integer("redis-replay-page-size"),
            replayTimeoutMs: s.integer("redis-replay-timeout"),
          },
    historyFile,
    nats,
    tls: tlsOf(s),
    workers,
    devMode,
    ops: {
      // A separate metrics port implies metrics, served there only.
      metrics: s.boolean("metrics") || s.text("metrics-port") !== undefined,
      metricsPort: s.text("metrics-port") === undefined ? undefined : s.integer("metrics-port"),
      // Read even in dev mode, so a misspelt value is refused there too.
      dashboard: s.boolean("dashboard") || devMode,
      logLevel: s.choice("log-level", LOG_LEVELS) ?? "info",
      logFormat: s.choice("log-format", LOG_FORMATS),
      drainTimeoutMs: s.integer("drain-timeout"),
    },
  };
}

/**
 * Settings that mean something only with another one (an engine's, HTTPS's): given without it,
 * they are refused, not ignored, so a missing `--redis` does not pass for a configured one.
 */
const NEEDS: readonly (readonly [SettingName, readonly SettingName[], string])[] = [
  [
    "history-file",
    ["history-sync", "history-max-age"],
    "the in-memory history has no such setting",
  ],
  [
    "redis",
    [
      "redis-prefix",
      "redis-max-len",
      "redis-max-age",
      "redis-wait-replicas",
      "redis-replay-concurrency",
      "redis-replay-page-size",
      "redis-replay-timeout",
    ],
    "without Redis the setting means nothing",
  ],
  ["nats", ["nats-stream", "nats-max-age"], "without NATS the setting means nothing"],
  ["tls-cert", ["max-streams-per-connection"], "only HTTPS serves HTTP/2"],
];

// Settings that cannot both hold. The timeouts are checked by the server too, but in the library's
// words; here in the command line's.
function refuseContradictions(s: Settings): void {
  const headers = s.integer("headers-timeout");
  const request = s.integer("request-timeout");
  if (headers > 0 && request > 0 && headers > request) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${s.origin("headers-timeout")} (${headers} ms) must not exceed ${s.origin("request-timeout")} (${request} ms): the headers are part of the request`,
    );
  }
  // Same port twice: the second listen would fail after the first had announced itself.
  const port = s.integer("port");
  if (s.isGiven("metrics-port") && port !== 0 && s.integer("metrics-port") === port) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${s.origin("metrics-port")} is the hub's own port (${port}): give another, or use --metrics to serve /metrics on the hub's port`,
    );
  }
}

function refuseOrphans(s: Settings): void {
  for (const [owner, dependents, why] of NEEDS) {
    if (s.isGiven(owner)) continue;
    for (const name of dependents) {
      // Its default named explicitly (a shared environment file) changes nothing: let it be.
      if (s.isGiven(name) && s.text(name) !== SETTINGS[name].default) {
        throw new CrierError(
          "CRIER_ERR_INVALID_OPTION",
          `${s.origin(name)} needs --${owner} (${SETTINGS[owner].env}): ${why}`,
        );
      }
    }
  }
}

function historyFileOf(s: Settings): HistoryFileConfig | undefined {
  const path = s.text("history-file");
  const sync = s.choice("history-sync", HISTORY_SYNCS) as HistorySync;
  const maxAgeMs = s.integer("history-max-age");
  return path === undefined
    ? undefined
    : { path, sync, maxAgeMs, origin: s.origin("history-file") };
}

// With --nats, the stream is the history: --history-size is its length (at least one).
function natsOf(s: Settings): NatsConfig | undefined {
  const text = s.text("nats");
  if (text === undefined) return undefined;
  const maxLen = s.integer("history-size");
  if (maxLen < 1) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${s.origin("history-size")} must be at least 1 with --nats: a JetStream stream keeps at least one message`,
    );
  }
  const maxAgeMs = s.integer("nats-max-age");
  if (maxAgeMs > 0 && maxAgeMs < MIN_MAX_AGE_MS) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${s.origin("nats-max-age")} must be 0 (off) or at least ${MIN_MAX_AGE_MS} ms: JetStream refuses a shorter max_age`,
    );
  }
  return {
    url: natsUrlOf(text, s.origin("nats")),
    stream: s.text("nats-stream") as string,
    maxLen,
    maxAgeMs,
  };
}

// Both files or neither; each must be readable, and the pair must make a TLS context (a PEM
// certificate and its private key), so that a wrong file is refused at start, not at the first
// handshake.
function tlsOf(s: Settings): TlsConfig | undefined {
  const certPath = s.text("tls-cert");
  const keyPath = s.text("tls-key");
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) {
    const [given, missing] =
      certPath === undefined ? ["tls-key", "tls-cert"] : ["tls-cert", "tls-key"];
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${s.origin(given as SettingName)} needs --${missing} (${SETTINGS[missing as SettingName].env}) too: HTTPS needs a certificate and its private key`,
    );
  }
  const files = {
    certPath,
    keyPath,
    certName: s.origin("tls-cert"),
    keyName: s.origin("tls-key"),
  };
  return {
    ...readTlsPair(files),
    files,
    maxConcurrentStreams: s.integer("max-streams-per-connection"),
  };
}

// Read even when pushback is off, so a misspelt threshold is refused either way.
function pushbackOf(s: Settings): HubOptions["pushback"] {
  const holdMs = s.integer("pushback-hold");
  const refuseMs = s.integer("pushback-refuse");
  if (refuseMs < holdMs) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${s.origin("pushback-refuse")} (${refuseMs} ms) must be at least ${s.origin("pushback-hold")} (${holdMs} ms)`,
    );
  }
  return s.boolean("pushback") ? { holdMs, refuseMs } : false;
}

/**
 * `--host`: an IP address or a host name (resolved when the port is bound; one that does not
 * resolve is named then). An IPv6 address in brackets, as in a URL, is refused with the fix.
 */
function hostOf(s: Settings): string | undefined {
  const host = s.text("host");
  if (host === undefined || isIP(host) !== 0 || HOST_NAME.test(host)) return host;
  const bare = /^\[(.*)\]$/.exec(host)?.[1];
  throw new CrierError(
    "CRIER_ERR_INVALID_OPTION",
    bare !== undefined && isIP(bare) === 6
      ? `${s.origin("host")} takes an IPv6 address without brackets: ${bare}`
      : `${s.origin("host")} must be an IP address or a host name, got ${JSON.stringify(host)}`,
  );
}

// RFC 1123 labels, dot-separated.
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
