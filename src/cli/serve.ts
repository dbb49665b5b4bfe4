/**
 * `crier` (serving): one process, or `--workers N` processes behind node:cluster. Drains on
 * SIGTERM/SIGINT: not ready at once, new subscribers answered 503 with Retry-After, open streams
 * ended with a jittered `retry` hint spread over the drain window, exit 0 within it. SIGHUP:
 * the TLS certificate and key are read again (tls.ts).
 */
import cluster from "node:cluster";
import { X509Certificate } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { Http2SecureServer } from "node:http2";
import type { Logger } from "pino";
import type { Backplane } from "../backplane/backplane.ts";
import type { FileBackplane } from "../backplane/file.ts";
import type { NatsBackplane } from "../backplane/nats.ts";
import type { RedisBackplane } from "../backplane/redis.ts";
import { CrierError, isCrierError } from "../errors.ts";
import { createHub, type Hub } from "../hub.ts";
import { createSecureHubServer } from "../mercure/http/secure.ts";
import { createHubServer } from "../mercure/http/server.ts";
import { shutdown } from "../mercure/http/shutdown.ts";
import { MERCURE_PATH } from "../mercure/paths.ts";
import { mintToken } from "../mercure/tokens/mint.ts";
import { VERSION } from "../ops/build.ts";
import { Readiness } from "../ops/health.ts";
import {
  type HistoryFileConfig,
  type NatsConfig,
  parseServeConfig,
  type RedisConfig,
  type ServeConfig,
  WORKER_DEV_KEY,
} from "./config.ts";
import { log } from "./output.ts";
import { certificateDatesProblem, readTlsPair, type TlsFiles } from "./tls.ts";
import { redact } from "./urls.ts";
import { runWorkers } from "./workers.ts";

/** Serves until a signal; resolves with the exit code. */
export async function serve(argv: string[]): Promise<number> {
  // SIGHUP's default action ends the process: from the first moment it is a reload (of the
  // certificate, once the hub serves; ignored before), never an exit mid-start.
  let onHangUp = () => {};
  process.on("SIGHUP", () => onHangUp());
  const config = parseServeConfig(argv, process.env);
  if (config.workers > 1 && cluster.isPrimary) {
    // Dev mode: one throwaway key for all workers, so a token works on any of them; each is in
    // dev mode as one process would be (anonymous subscribers, the dashboard).
    const key = config.handler.publisherKey as string;
    const env = config.devMode ? { [WORKER_DEV_KEY]: key } : ({} as Record<string, string>);
    // Announced once the port is bound (with --port 0 the workers share one the system picks).
    const announce = (port: number) => {
      if (!config.devMode) return;
      announceDevMode(primaryUrlOf({ ...config, port }), key).catch((err: unknown) =>
        log(`the dev-mode banner could not be printed: ${(err as Error).message}`),
      );
    };
    // A history file that cannot be used is refused here, once, rather than by every worker.
    if (config.historyFile !== undefined) {
      await (await fileBackplane(config.historyFile, config.hub.history?.maxEvents)).close();
    }
    // Each worker drains on its own; it is killed only once its drain should long be over.
    return runWorkers(config.workers, env, log, config.ops.drainTimeoutMs, announce);
  }
  const { ops } = config;
  const { createLogger, logHub } = await import("../ops/log.ts");
  const logger = createLogger(
    ops.logLevel,
    ops.logFormat ?? (process.stdout.isTTY ? "pretty" : "json"),
  );
  logger.info(
    { version: VERSION, node: process.version, config: describeConfig(config) },
    "starting",
  );
  const backplane =
    config.redis !== undefined
      ? await redisBackplane(config.redis, logger)
      : config.nats !== undefined
        ? await natsBackplane(config.nats, logger)
        : config.historyFile !== undefined
          ? await fileBackplane(config.historyFile, config.hub.history?.maxEvents)
          : undefined;
  const hub = createHub({ ...config.hub, backplane });
  logHub(logger, hub);
  const engine = config.redis ?? config.nats;
  if (engine !== undefined) await connected(hub, config.redis ? "Redis" : "NATS", engine.url);
  const readiness = new Readiness(hub, backplane);
  const metrics = ops.metrics ? await startMetrics(hub, backplane) : undefined;
  const routes =
    metrics !== undefined && ops.metricsPort === undefined ? { "/metrics": metrics.handler } : {};
  // Dev mode serves the dashboard's figures without a token: its key dies with the process.
  const dashboard = ops.dashboard && { backplane, open: config.devMode };
  const handler = { hub, ...config.handler, ready: readiness.ready, routes, dashboard };
  const { tls } = config;
  const secure =
    tls &&
    createSecureHubServer({
      ...handler,
      cert: tls.cert,
      key: tls.key,
      maxConcurrentStreams: tls.maxConcurrentStreams,
    });
  const server = secure ?? createHubServer(handler);
  if (tls !== undefined) warnOnDates(logger, tls.cert);
  // The metrics port first: "listening on" is logged once everything listens.
  let metricsServer: Server | undefined;
  if (metrics !== undefined && ops.metricsPort !== undefined) {
    metricsServer = createServer((req, res) => {
      const text = (status: number, body: string, headers = {}) => {
        res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", ...headers });
        res.end(body);
      };
      // As on the hub's port: the path decides, whatever the query; GET and HEAD.
      if (req.url?.split("?")[0] !== "/metrics") text(404, "not found\n");
      else if (req.method === "GET" || req.method === "HEAD") metrics.handler(req, res);
      else text(405, "only GET and HEAD are allowed here\n", { Allow: "GET, HEAD" });
    });
    await listen(metricsServer, ops.metricsPort, config.host, "--metrics-port", config.hostSetting);
    const metricsUrl = `http://${urlHost(config.host)}:${portOf(metricsServer, ops.metricsPort)}/metrics`;
    logger.info({ url: metricsUrl }, `metrics on ${metricsUrl}`);
  }
  await listen(server, config.port, config.host, "--port", config.hostSetting).catch(
    (err: unknown) => {
      metricsServer?.close();
      throw err;
    },
  );
  const port = portOf(server, config.port);
  const scheme = tls === undefined ? "http" : "https";
  const url = `${scheme}://${urlHost(config.host)}:${port}${MERCURE_PATH}`;
  logger.info({ url }, `listening on ${url}`);
  // (A worker's primary announces it, once.)
  if (config.devMode && cluster.isPrimary) {
    await announceDevMode(url, config.handler.publisherKey as string);
  }
  return new Promise((resolve) => {
    let draining = false;
    // `code`: 0 after a signal, 1 when the process must be restarted (its history file is gone).
    const stop = (signal: string, code = 0) => {
      // One drain: a second signal (Ctrl-C sends SIGINT to every worker, and the primary then
      // sends SIGTERM) must not close the port while streams are still being ended.
      if (draining) {
        logger.info({ signal }, "drain already under way");
        return;
      }
      draining = true;
      const started = Date.now();
      readiness.draining = true;
      const { subscribers } = hub.stats;
      const timeoutMs = ops.drainTimeoutMs;
      logger.info({ signal, subscribers, timeoutMs }, "drain started");
      // Streams are ended over most of the window; the rest is for their last bytes.
      shutdown(server, hub, timeoutMs, Math.floor(timeoutMs * 0.7)).then(
        () => {
          metricsServer?.close();
          metricsServer?.closeAllConnections();
          logger.info({ durationMs: Date.now() - started }, "drain finished");
          resolve(code);
        },
        (err: unknown) => {
          logger.error({ err: String(err) }, "drain failed");
          resolve(1);
        },
      );
    };
    // Kept for the whole drain: a signal with no listener would end the process at once.
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    // Appends to a removed file would be lost, and other processes now use another one: this
    // process drains and exits 1, so that its supervisor (or the workers' primary) starts it
    // again on the file the path names now.
    if (config.historyFile !== undefined && engine === undefined && backplane !== undefined) {
      const file = backplane as FileBackplane;
      const replaced = () => {
        logger.error(
          { path: config.historyFile?.path },
          "history file removed or replaced: draining, to be restarted on it",
        );
        stop("history file replaced", 1);
      };
      // (Replaced while the hub was starting: at once.)
      if (file.replaced) replaced();
      else file.once("replaced", replaced);
    }
    // SIGHUP reloads the certificate (renewed on disk) instead of ending the process.
    onHangUp = () => {
      if (tls === undefined || secure === undefined) {
        logger.info({ signal: "SIGHUP" }, "nothing to reload: no --tls-cert");
        return;
      }
      reloadCertificate(secure, tls.files, logger);
    };
  });
}

/**
 * Reads the certificate and key again and serves them to new connections; open ones (and their
 * streams) keep theirs. A pair that cannot be used is logged and the one served is kept.
 */
function reloadCertificate(server: Http2SecureServer, files: TlsFiles, logger: Logger): void {
  try {
    const { cert, key } = readTlsPair(files);
    server.setSecureContext({ cert, key });
    const { validTo, fingerprint256 } = new X509Certificate(cert);
    logger.info({ signal: "SIGHUP", validTo, fingerprint256 }, "certificate reloaded");
    warnOnDates(logger, cert);
  } catch (err) {
    logger.error(
      { signal: "SIGHUP", err: (err as Error).message },
      "certificate not reloaded: the one already served is kept",
    );
  }
}

// A certificate that clients will refuse is served anyway (it may be about to be replaced), but
// the log says so.
function warnOnDates(logger: Logger, cert: Buffer): void {
  const problem = certificateDatesProblem(cert);
  if (problem !== undefined) logger.warn({ problem }, `${problem}: clients will refuse it`);
}

/**
 * `host` as a URL spells it: an IPv6 address in brackets, without its zone (`%eth0`), which a
 * URL cannot hold.
 */
function urlHost(host: string | undefined): string {
  if (host === undefined) return "localhost";
  return host.includes(":") ? `[${host.split("%")[0]}]` : host;
}

/** Listens; a port that cannot be had is named by its setting (`what`) in the error. */
const HOST_ERRORS = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EADDRNOTAVAIL"]);

function listen(
  server: Server | Http2SecureServer,
  port: number,
  host: string | undefined,
  what: string,
  hostSetting = "--host",
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const on = `${host === undefined ? "" : `${host} `}port ${port}`;
      const why =
        err.code === "EADDRINUSE"
          ? "it is in use by another process"
          : err.code === "EACCES"
            ? "this user may not listen there"
            : err.message;
      // A name that does not resolve, or an address not on this machine, is the host's fault.
      const setting = HOST_ERRORS.has(err.code ?? "") ? hostSetting : what;
      reject(new Error(`${setting}: cannot listen on ${on}: ${why}`, { cause: err }));
    });
    server.listen(port, host, resolve);
  });
}

function portOf(server: Server | Http2SecureServer, fallback: number): number {
  const address = server.address();
  return typeof address === "object" && address !== null ? address.port : fallback;
}

// prom-client is loaded only when metrics are asked for.
async function startMetrics(hub: Hub, backplane: (Backplane & { available: boolean }) | undefined) {
  const { registerMetrics } = await import("../ops/metrics.ts");
  return registerMetrics({ hub, backplane, defaultMetrics: true });
}

// The effective configuration, for the first log line: what a secret is set to never appears,
// only whether it is set; a Redis URL loses its user and password.
function describeConfig(config: ServeConfig): Record<string, unknown> {
  const { handler } = config;
  const set = (value: unknown) => (value === undefined ? "unset" : "[redacted]");
  return {
    port: config.port,
    host: config.host ?? "all interfaces",
    workers: config.workers,
    devMode: config.devMode,
    keepAliveMs: config.hub.keepAliveMs,
    flushWindowMs: config.hub.flushWindowMs,
    historySize: config.hub.history?.maxEvents,
    publisherKey: set(handler.publisherKey),
    subscriberKey: set(handler.subscriberKey),
    jwks: handler.jwks === undefined ? "unset" : `${handler.jwks.keys.length} keys`,
    jwtIssuer: handler.jwtIssuer,
    jwtAudience: handler.jwtAudience,
    authorizationQuery: handler.authorizationQuery,
    allowWeakKey: handler.allowWeakKey,
    anonymous: handler.anonymous,
    subscriptions: handler.subscriptions,
    maxSubscribers: handler.maxSubscribers,
    corsOrigins: handler.corsOrigins,
    publicOrigin: handler.publicOrigin,
    redis:
      config.redis === undefined ? undefined : { ...config.redis, url: redact(config.redis.url) },
    historyFile: config.historyFile,
    nats: config.nats === undefined ? undefined : { ...config.nats, url: redact(config.nats.url) },
    ...config.ops,
  };
}

// Loaded only when asked for, so a hub without --redis never loads the Redis client.
async function redisBackplane(config: RedisConfig, logger: Logger): Promise<RedisBackplane> {
  const { RedisBackplane } = await import("../backplane/redis.ts");
  const backplane = new RedisBackplane(config);
  backplane.on("down", (err) =>
    logger.info({ err: err.message }, "Redis unavailable; publishes answer 503"),
  );
  backplane.on("up", () => logger.info("Redis available again; resuming"));
  backplane.on("epoch", (epoch) =>
    logger.info({ epoch }, "Redis stream is new; older ids resume from earliest"),
  );
  backplane.on("skip", (position) =>
    logger.warn(
      { position },
      "Redis stream entry skipped: it is not an update a publisher could store",
    ),
  );
  backplane.on("lost", (position) =>
    logger.warn(
      { position },
      "Redis lost updates this node delivered (failover to a replica without them); their ids resume from earliest",
    ),
  );
  backplane.on("gap", (after, next) =>
    logger.warn(
      { after, next },
      "Redis trimmed updates before this node read them (it fell behind); streams reset",
    ),
  );
  return backplane;
}

// Loaded only when asked for, so a hub without --history-file never loads LMDB. A file that
// cannot be used is a usage error (exit 2), named by the flag or variable that gave it.
async function fileBackplane(
  config: HistoryFileConfig,
  maxEvents: number | undefined,
): Promise<FileBackplane> {
  const { FileBackplane, isCommitFailure } = await import("../backplane/file.ts");
  // A failed commit (a full disk) is answered 503 to its publisher, but lmdb-js also rejects a
  // promise of its own that no one can hold; that one must not end the process.
  if (process.listenerCount("unhandledRejection") === 0) {
    process.on("unhandledRejection", (reason) => {
      if (!isCommitFailure(reason)) throw reason;
    });
  }
  try {
    return new FileBackplane({ ...config, maxEvents });
  } catch (err) {
    if (!isCrierError(err, "CRIER_ERR_INVALID_OPTION")) throw err;
    throw new CrierError("CRIER_ERR_INVALID_OPTION", `${config.origin}: ${err.message}`, {
      cause: err,
    });
  }
}

// Loaded only when asked for, so a hub without --nats never loads the NATS client.
async function natsBackplane(config: NatsConfig, logger: Logger): Promise<NatsBackplane> {
  const { NatsBackplane } = await import("../backplane/nats.ts");
  const backplane = new NatsBackplane(config);
  backplane.on("down", (err) =>
    logger.info({ err: err.message }, "NATS unavailable; publishes answer 503"),
  );
  backplane.on("up", () => logger.info("NATS available again; resuming"));
  backplane.on("epoch", (epoch) =>
    logger.info({ epoch }, "NATS stream is new; older ids resume from earliest"),
  );
  backplane.on("gap", (from, to) =>
    logger.warn({ from, to }, "NATS trimmed updates before this node read them; streams reset"),
  );
  backplane.on("wentBack", (delivered, last) =>
    logger.warn(
      { delivered, last },
      "NATS stream went back to an older copy; a new epoch was made and streams reset",
    ),
  );
  backplane.on("skip", (sequence) =>
    logger.warn({ sequence }, "NATS message skipped: it is not an update a publisher could store"),
  );
  return backplane;
}

// The hub bounds its own wait (readyTimeoutMs); this only names the engine in the message.
async function connected(hub: Hub, engine: string, url: string): Promise<void> {
  try {
    await hub.ready();
  } catch (err) {
    await hub.close();
    throw new Error(`cannot reach ${engine} at ${redact(url)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

// What the primary of `--workers` announces once the first worker listens: the host asked for
// and the port bound.
function primaryUrlOf(config: { port: number; host: string | undefined; tls: unknown }): string {
  const scheme = config.tls === undefined ? "http" : "https";
  return `${scheme}://${urlHost(config.host)}:${config.port}${MERCURE_PATH}`;
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
  Dashboard:  ${new URL("/", url).href}
  This token expires in 24 hours (${expires}); restart the hub for a new key and token.`);
}
