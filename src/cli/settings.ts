/**
 * Every setting of the standalone hub, once: its flag, its environment variable, its type, its
 * default and its help. The parser (`config.ts`), `crier --help` and the README's configuration
 * table are all made from this table (a test fails when the README disagrees with it).
 *
 * Flags win over environment variables; an empty variable counts as unset.
 */

import { FILE_DEFAULTS, HISTORY_SYNCS } from "../history/file-defaults.ts";
import { HISTORY_DEFAULTS, MAX_HISTORY_EVENTS } from "../history/memory.ts";
import { NATS_DEFAULTS } from "../history/nats-defaults.ts";
import { REDIS_DEFAULTS } from "../history/redis-defaults.ts";
import { HUB_DEFAULTS } from "../hub.ts";
import { HANDLER_DEFAULTS } from "../mercure/http/context.ts";
import { SERVER_DEFAULTS } from "../mercure/http/limits.ts";
import { PUSHBACK_DEFAULTS } from "../pushback.ts";

/** How a setting's text is read. */
export type SettingType = "string" | "integer" | "boolean";

/** One setting. */
export interface Setting {
  readonly type: SettingType;
  /** The environment variable that sets it when the flag is absent. */
  readonly env: string;
  /** The value used when neither is given, as it would be written; `undefined`: unset. */
  readonly default?: string | undefined;
  /** How the default reads in docs when it is not a plain value (`none: dev mode`). */
  readonly defaultText?: string | undefined;
  /** Smallest and largest value of an integer setting. */
  readonly min?: number | undefined;
  readonly max?: number | undefined;
  /** One line for `--help` and the README. */
  readonly help: string;
}

const table = {
  port: {
    type: "integer",
    env: "CRIER_PORT",
    default: "8080",
    min: 0,
    max: 65535,
    help: "port to listen on",
  },
  host: {
    type: "string",
    env: "CRIER_HOST",
    defaultText: "all interfaces",
    help: "address to bind",
  },
  "jwt-key": {
    type: "string",
    env: "CRIER_JWT_KEY",
    defaultText: "none: dev mode",
    help: "HS256 secret (at least 32 bytes), or a PEM public key (inline or a file path), for publishers and subscribers",
  },
  "publisher-jwt-key": {
    type: "string",
    env: "CRIER_PUBLISHER_JWT_KEY",
    defaultText: "`--jwt-key`",
    help: "key for publishers' tokens",
  },
  "subscriber-jwt-key": {
    type: "string",
    env: "CRIER_SUBSCRIBER_JWT_KEY",
    defaultText: "`--jwt-key`",
    help: "key for subscribers' tokens",
  },
  jwks: {
    type: "string",
    env: "CRIER_JWKS",
    defaultText: "none",
    help: "a JWK Set file (JSON) of public keys, for roles without a key of their own; the token's `kid` picks the key",
  },
  "allow-weak-key": {
    type: "boolean",
    env: "CRIER_ALLOW_WEAK_KEY",
    default: "false",
    defaultText: "off",
    help: "accept an HMAC secret shorter than 32 bytes (one token is enough to guess it offline); for tests only",
  },
  "jwt-issuer": {
    type: "string",
    env: "CRIER_JWT_ISSUER",
    defaultText: "none",
    help: "the trusted issuer, required as `iss` of draft-08 access tokens (`typ: at+jwt`; without it they are refused)",
  },
  "jwt-audience": {
    type: "string",
    env: "CRIER_JWT_AUDIENCE",
    defaultText: "none",
    help: "the hub's resource identifier, required in `aud` of draft-08 access tokens (without it they are refused)",
  },
  "authorization-query": {
    type: "boolean",
    env: "CRIER_AUTHORIZATION_QUERY",
    default: "false",
    defaultText: "off",
    help: "accept the token in the `authorization` query parameter (v0.x clients that cannot set headers); never logged",
  },
  anonymous: {
    type: "boolean",
    env: "CRIER_ANONYMOUS",
    default: "false",
    defaultText: "off",
    help: "allow subscribers without a token (they never receive private updates)",
  },
  "max-subscribers": {
    type: "integer",
    env: "CRIER_MAX_SUBSCRIBERS",
    default: String(HANDLER_DEFAULTS.maxSubscribers),
    min: 1,
    max: 100_000_000,
    help: "concurrent subscriptions; past it, `429` with `Retry-After`",
  },
  subscriptions: {
    type: "boolean",
    env: "CRIER_SUBSCRIPTIONS",
    default: "false",
    defaultText: "off",
    help: "Mercure active subscriptions: private subscription events and the `/.well-known/mercure/subscriptions` API",
  },
  "history-size": {
    type: "integer",
    env: "CRIER_HISTORY_SIZE",
    default: String(HISTORY_DEFAULTS.maxEvents),
    min: 0,
    max: MAX_HISTORY_EVENTS,
    help: "updates kept for resume (in memory, or in `--history-file`)",
  },
  "history-file": {
    type: "string",
    env: "CRIER_HISTORY_FILE",
    defaultText: "none: in memory",
    help: "keep the history in this file (LMDB; needs the `lmdb` package), so that it survives a restart; see docs/history-file.md",
  },
  "history-sync": {
    type: "string",
    env: "CRIER_HISTORY_SYNC",
    default: FILE_DEFAULTS.sync,
    help: `with \`--history-file\`: ${HISTORY_SYNCS.map((s) => `\`${s}\``).join(" or ")}; \`batch\` acknowledges a publish once committed (a power loss can lose the last few ms), \`always\` once flushed to disk`,
  },
  "history-max-age": {
    type: "integer",
    env: "CRIER_HISTORY_MAX_AGE",
    default: String(FILE_DEFAULTS.maxAgeMs),
    defaultText: "`0` (off)",
    min: 0,
    max: 2 ** 40,
    help: "with `--history-file`: ms after which an update is evicted",
  },
  "keep-alive": {
    type: "integer",
    env: "CRIER_KEEP_ALIVE",
    default: String(HUB_DEFAULTS.keepAliveMs),
    min: 0,
    max: 3_600_000,
    help: "ms between keep-alive comments; `0` turns them off",
  },
  "flush-window": {
    type: "integer",
    env: "CRIER_FLUSH_WINDOW",
    default: String(HUB_DEFAULTS.flushWindowMs),
    min: 0,
    max: 1000,
    help: "least ms between the end of one flush to subscribers and the start of the next: under a publish flood each write carries more updates; after a quiet spell an update is written at once; `0` flushes on every event-loop turn",
  },
  pushback: {
    type: "boolean",
    env: "CRIER_PUSHBACK",
    default: "true",
    defaultText: "on",
    help: "push back on publishers when the hub's fan-out backlog grows: hold publish answers, then refuse with `503` and `Retry-After` (see Overload); `--pushback=off` accepts every publish at once",
  },
  "pushback-hold": {
    type: "integer",
    env: "CRIER_PUSHBACK_HOLD",
    default: String(PUSHBACK_DEFAULTS.holdMs),
    min: 1,
    max: 3_600_000,
    help: "ms of fan-out backlog (or a quarter of a subscriber queue's bounds) from which a publish answer waits until its update is written",
  },
  "pushback-refuse": {
    type: "integer",
    env: "CRIER_PUSHBACK_REFUSE",
    default: String(PUSHBACK_DEFAULTS.refuseMs),
    min: 1,
    max: 3_600_000,
    help: "ms of fan-out backlog (or half a subscriber queue's bounds) from which a publish is refused with `503` and `Retry-After`, nothing stored; at least `--pushback-hold`",
  },
  "cors-origins": {
    type: "string",
    env: "CRIER_CORS_ORIGINS",
    defaultText: "none",
    help: "comma-separated browser origins allowed (with credentials), each `scheme://host[:port]`; `*` allows any origin without credentials",
  },
  "public-origin": {
    type: "string",
    env: "CRIER_PUBLIC_ORIGIN",
    defaultText: "each request's own",
    help: "the hub's public origin, `scheme://host[:port]`: the base of relative topics and URL patterns (in subscriptions and tokens), and the origin a cookie-authenticated publish may come from; set it behind a TLS-terminating proxy and whenever grants are relative (by default each request's `Host` decides)",
  },
  redis: {
    type: "string",
    env: "CRIER_REDIS",
    defaultText: "none",
    help: "share updates and history through Redis: `redis://host:port` (`rediss://`), `redis+sentinel://host:port,…/name` or `redis+cluster://host:port,…`",
  },
  "redis-prefix": {
    type: "string",
    env: "CRIER_REDIS_PREFIX",
    default: REDIS_DEFAULTS.prefix,
    help: "prefix of every Redis key; hubs with the same prefix share updates",
  },
  "redis-max-len": {
    type: "integer",
    env: "CRIER_REDIS_MAX_LEN",
    default: String(REDIS_DEFAULTS.maxLen),
    min: 1,
    max: 1_000_000_000,
    help: "updates the Redis stream keeps, about",
  },
  "redis-max-age": {
    type: "integer",
    env: "CRIER_REDIS_MAX_AGE",
    default: String(REDIS_DEFAULTS.maxAgeMs),
    defaultText: "`0` (off)",
    min: 0,
    max: 2 ** 40,
    help: "ms after which Redis trims an update",
  },
  nats: {
    type: "string",
    env: "CRIER_NATS",
    defaultText: "none",
    help: "share updates and history through this NATS JetStream (a `nats://` or `tls://` URL); the stream keeps `--history-size` updates",
  },
  "nats-stream": {
    type: "string",
    env: "CRIER_NATS_STREAM",
    default: NATS_DEFAULTS.stream,
    help: "name of the JetStream stream; hubs with the same stream share updates",
  },
  "nats-max-age": {
    type: "integer",
    env: "CRIER_NATS_MAX_AGE",
    default: String(NATS_DEFAULTS.maxAgeMs),
    defaultText: "`0` (off)",
    min: 0,
    max: 2 ** 40,
    help: "ms after which the stream trims an update (`max_age`)",
  },
  "redis-wait-replicas": {
    type: "integer",
    env: "CRIER_REDIS_WAIT_REPLICAS",
    default: "0",
    defaultText: "`0` (off)",
    min: 0,
    max: 100,
    help: "replicas that must hold a publish before it is acknowledged (`WAIT`); behind Sentinel, `1` keeps acknowledged publishes through a failover; not with a Cluster",
  },
  "redis-replay-concurrency": {
    type: "integer",
    env: "CRIER_REDIS_REPLAY_CONCURRENCY",
    default: String(REDIS_DEFAULTS.replayConcurrency),
    min: 1,
    max: 1024,
    help: "resumes that read the Redis history at once, on a connection of their own; more wait their turn (they do not fail)",
  },
  "redis-replay-page-size": {
    type: "integer",
    env: "CRIER_REDIS_REPLAY_PAGE_SIZE",
    default: String(REDIS_DEFAULTS.replayPageSize),
    min: 1,
    max: 100_000,
    help: "most entries a resume reads from Redis at once (pages are also cut at 256 KiB); the next page is read once the subscriber has written the last",
  },
  "redis-replay-timeout": {
    type: "integer",
    env: "CRIER_REDIS_REPLAY_TIMEOUT",
    default: String(REDIS_DEFAULTS.replayTimeoutMs),
    min: 1,
    max: 3_600_000,
    help: "ms before a resume's read of the Redis history that got no answer fails; the client's connection is dropped and it resumes again",
  },
  workers: {
    type: "integer",
    env: "CRIER_WORKERS",
    default: "1",
    min: 1,
    max: 1024,
    help: "processes serving the port (node:cluster); needs `--redis`, `--nats` or `--history-file`",
  },
  "max-subscribers-per-ip": {
    type: "integer",
    env: "CRIER_MAX_SUBSCRIBERS_PER_IP",
    default: String(HANDLER_DEFAULTS.maxSubscribersPerIp),
    defaultText: "`0` (off)",
    min: 0,
    max: 100_000_000,
    help: "concurrent subscriptions from one client address (IPv6: one /64); past it, `429` with `Retry-After`; off by default since behind a proxy every client has the proxy's address",
  },
  "max-subscribe-rate": {
    type: "integer",
    env: "CRIER_MAX_SUBSCRIBE_RATE",
    default: String(HANDLER_DEFAULTS.maxSubscribeRate),
    min: 0,
    max: 100_000_000,
    help: "new subscriptions admitted per second per process; past it, `503` with `Retry-After: 1`; `0` turns it off",
  },
  "max-connection-lifetime": {
    type: "integer",
    env: "CRIER_MAX_CONNECTION_LIFETIME",
    default: String(HANDLER_DEFAULTS.maxConnectionLifetimeMs),
    min: 0,
    max: 2_147_483_647,
    help: "ms an event stream stays open (each drawn between 90 % and 100 % of it; checked at each keep-alive, so up to one keep-alive longer), then the client reconnects and shows its token again; `0` turns it off",
  },
  "headers-timeout": {
    type: "integer",
    env: "CRIER_HEADERS_TIMEOUT",
    default: String(SERVER_DEFAULTS.headersTimeoutMs),
    min: 0,
    max: 3_600_000,
    help: "ms a client has to send its request headers, then `408` and the connection is closed (slowloris); never ends an event stream; `0` turns it off",
  },
  "request-timeout": {
    type: "integer",
    env: "CRIER_REQUEST_TIMEOUT",
    default: String(SERVER_DEFAULTS.requestTimeoutMs),
    min: 0,
    max: 3_600_000,
    help: "ms a client has to send its whole request (a publish body too), then `408`; never ends an event stream; `0` turns it off",
  },
  "tls-cert": {
    type: "string",
    env: "CRIER_TLS_CERT",
    defaultText: "none: plain HTTP",
    help: "certificate chain file (PEM): serve HTTPS, HTTP/2 with HTTP/1.1 fallback on the same port; needs `--tls-key`",
  },
  "tls-key": {
    type: "string",
    env: "CRIER_TLS_KEY",
    defaultText: "none",
    help: "private key file (PEM) of `--tls-cert`",
  },
  "max-streams-per-connection": {
    type: "integer",
    env: "CRIER_MAX_STREAMS_PER_CONNECTION",
    default: String(SERVER_DEFAULTS.maxConcurrentStreams),
    min: 1,
    max: 2 ** 31 - 1,
    help: "HTTP/2 (with `--tls-cert`): streams one connection may hold at once; a browser queues event streams past it",
  },
  metrics: {
    type: "boolean",
    env: "CRIER_METRICS",
    default: "false",
    defaultText: "off",
    help: "serve Prometheus metrics at `/metrics` on the hub's port (off: the hub's port is often public)",
  },
  "metrics-port": {
    type: "integer",
    env: "CRIER_METRICS_PORT",
    defaultText: "none",
    min: 0,
    max: 65535,
    help: "serve `/metrics` on this port instead (on `--host`), and not on the hub's port; implies `--metrics`",
  },
  dashboard: {
    type: "boolean",
    env: "CRIER_DASHBOARD",
    default: "false",
    defaultText: "off; on in dev mode",
    help: "serve the live dashboard at `/` and its figures at `/dashboard.json`, for tokens with the `admin` right (off: it shows topic names)",
  },
  "log-level": {
    type: "string",
    env: "CRIER_LOG_LEVEL",
    default: "info",
    help: "`error`, `warn`, `info` or `debug` (each connection and publish)",
  },
  "log-format": {
    type: "string",
    env: "CRIER_LOG_FORMAT",
    defaultText: "`pretty` on a terminal, else `json`",
    help: "`json` (one object per line on stdout) or `pretty`",
  },
  "drain-timeout": {
    type: "integer",
    env: "CRIER_DRAIN_TIMEOUT",
    default: "5000",
    min: 0,
    max: 600_000,
    help: "ms a SIGTERM/SIGINT drain may take: open streams are ended spread over it, then the process exits",
  },
} as const satisfies Record<string, Setting>;

/** The settings, by flag name (without `--`). */
export const SETTINGS: Readonly<Record<SettingName, Setting>> = table;
export type SettingName = keyof typeof table;

/** How the default of `setting` reads in docs. */
export function defaultTextOf(setting: Setting): string {
  return setting.defaultText ?? `\`${setting.default}\``;
}

/** The lines of `crier --help` that list the settings. */
export function settingsHelp(): string {
  const entries = Object.entries(SETTINGS);
  const flagWidth = Math.max(...entries.map(([name]) => name.length)) + 2;
  const envWidth = Math.max(...entries.map(([, s]) => s.env.length));
  return entries
    .map(([name, s]) => {
      const text = defaultTextOf(s).replaceAll("`", "");
      return `  ${`--${name}`.padEnd(flagWidth)} ${s.env.padEnd(envWidth)} ${s.help.replaceAll("`", "")} (default: ${text})`;
    })
    .join("\n");
}

/** The README's configuration table, as Markdown with aligned columns. */
export function settingsTable(): string {
  const rows = [
    ["flag", "environment", "default", "meaning"],
    ...Object.entries(SETTINGS).map(([name, s]) => [
      `\`--${name}\``,
      `\`${s.env}\``,
      defaultTextOf(s),
      s.help,
    ]),
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i] as number)).join(" | ")} |`;
  const [head, ...body] = rows as [string[], ...string[][]];
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}
