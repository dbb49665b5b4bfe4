/**
 * The standalone hub's configuration, read from flags and `CRIER_*` environment variables through
 * the one settings table (`settings.ts`); the keys and dev mode come from `keys.ts`. The result is shaped as the options of what it configures, so
 * serving spreads it rather than copying it field by field.
 */
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { parseArgs } from "node:util";
import { CrierError } from "../errors.ts";
import type { HubOptions } from "../hub.ts";
import type { HubServerOptions } from "../mercure/http/server.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../ops/levels.ts";
import { integerOption } from "../options.ts";
import { keysOf } from "./keys.ts";
import { SETTINGS, type SettingName } from "./settings.ts";
import { corsOriginsOf, redisUrlOf } from "./urls.ts";

/** Everything the standalone hub needs to start. */
export interface ServeConfig {
  readonly port: number;
  readonly host: string | undefined;
  /** Options of the hub (its backplane comes from {@link redis}). */
  readonly hub: Pick<HubOptions, "keepAliveMs" | "history" | "pushback">;
  /** Options of the Mercure handler and its server, all but the hub. */
  readonly handler: Omit<HubServerOptions, "hub">;
  /** Where updates are shared between nodes; `undefined`: in this process only. */
  readonly redis: RedisConfig | undefined;
  /** Certificate and key (PEM) to serve HTTPS with HTTP/2; `undefined`: plain HTTP/1.1. */
  readonly tls: TlsConfig | undefined;
  /** Processes serving the port (node:cluster). 1: this process only. */
  readonly workers: number;
  /** No key was configured: a throwaway secret was generated and anonymous subscribers allowed. */
  readonly devMode: boolean;
  /** Metrics, logs and drain. */
  readonly ops: OpsConfig;
}

/** The `--metrics*`, `--log-*` and `--drain-timeout` flags. */
export interface OpsConfig {
  readonly metrics: boolean;
  /** A port of their own for the metrics; `undefined`: the hub's port. */
  readonly metricsPort: number | undefined;
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
}

/** The `--tls-*` flags, read. */
export interface TlsConfig {
  readonly cert: Buffer;
  readonly key: Buffer;
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
    // `--anonymous=no`: node's parser takes no value after a boolean flag, so those are read here.
    const spelled: Record<string, string> = {};
    const args = argv.filter((arg) => {
      const match = /^--([^=]+)=(.*)$/s.exec(arg);
      const name = match?.[1] as SettingName;
      if (match === null || SETTINGS[name]?.type !== "boolean") return true;
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
      throw new CrierError("CRIER_ERR_INVALID_OPTION", (err as Error).message);
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
    const text = this.text(name) ?? "";
    const value = /^\d+$/.test(text) ? Number(text) : text;
    return integerOption(`--${name}`, value, 0, setting.min, setting.max);
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
    if (value === undefined || value === "") {
      return { text: SETTINGS[name].default, from: `--${name}` };
    }
    return { text: String(value), from };
  }
}

/** Reads the serving flags from `argv` and `env`; throws `CRIER_ERR_INVALID_OPTION`. */
export function parseServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServeConfig {
  const s = new Settings(argv, env);
  const { publisherKey, subscriberKey, jwks, devMode } = keysOf(s);
  const redisText = s.text("redis");
  const redisUrl = redisText === undefined ? undefined : redisUrlOf(redisText, s.origin("redis"));
  const workers = s.integer("workers");
  if (workers > 1 && redisUrl === undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "--workers needs --redis: each worker would otherwise keep its own history and miss updates published to the others",
    );
  }
  return {
    port: s.integer("port"),
    host: s.text("host"),
    hub: {
      keepAliveMs: s.integer("keep-alive"),
      history: { maxEvents: s.integer("history-size") },
      pushback: pushbackOf(s),
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
      maxSubscribersPerIp: s.integer("max-subscribers-per-ip"),
      maxSubscribeRate: s.integer("max-subscribe-rate"),
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
          },
    tls: tlsOf(s),
    workers,
    devMode,
    ops: {
      // A separate metrics port implies metrics, served there only.
      metrics: s.boolean("metrics") || s.text("metrics-port") !== undefined,
      metricsPort: s.text("metrics-port") === undefined ? undefined : s.integer("metrics-port"),
      logLevel: s.choice("log-level", LOG_LEVELS) ?? "info",
      logFormat: s.choice("log-format", LOG_FORMATS),
      drainTimeoutMs: s.integer("drain-timeout"),
    },
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
  const cert = readTlsFile(s, "tls-cert", certPath);
  const key = readTlsFile(s, "tls-key", keyPath);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${s.origin("tls-cert")} and ${s.origin("tls-key")} are not a PEM certificate and its private key (${(err as Error).message})`,
    );
  }
  return { cert, key, maxConcurrentStreams: s.integer("max-streams-per-connection") };
}

function readTlsFile(s: Settings, name: SettingName, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${s.origin(name)}: cannot read ${JSON.stringify(path)} (${reason})`,
    );
  }
}

// Read even when pushback is off, so a misspelt threshold is refused either way.
function pushbackOf(s: Settings): HubOptions["pushback"] {
  const holdMs = s.integer("pushback-hold");
  const refuseMs = s.integer("pushback-refuse");
  if (refuseMs < holdMs) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `--pushback-refuse (${refuseMs} ms) must be at least --pushback-hold (${holdMs} ms)`,
    );
  }
  return s.boolean("pushback") ? { holdMs, refuseMs } : false;
}
