/**
 * The one place the Redis engine makes its connections. A URL names the deployment:
 *
 *   redis://[user:password@]host[:port][/db]                  one Redis (rediss:// for TLS)
 *   redis+sentinel://[user:password@]h1:26379,h2:26379/name[/db]  the primary Sentinel names
 *   redis+cluster://[user:password@]h1:6379,h2:6379          a Redis Cluster, from seed nodes
 *
 * (`rediss+sentinel://` and `rediss+cluster://` reach the data nodes over TLS.) The user and
 * password are those of the data nodes; a Sentinel that asks for its own goes in the ioredis
 * options (`sentinelPassword`). Parsing loads no Redis client, so the command line checks a URL
 * before it starts anything.
 */
import type { Cluster, Redis, RedisOptions } from "ioredis";
import { CrierError } from "../errors.ts";
import { loadPeer, type Require, requirePeer } from "./peer.ts";

/** A connection the engine uses: one Redis (direct or found through Sentinel) or a Cluster. */
export type RedisClient = Redis | Cluster;

/** ioredis options, less the reply mapping the backplane relies on being the default. */
export type ConnectionOptions = Omit<RedisOptions, "replyMapping">;

/** A parsed Redis URL: which kind of deployment, and where. */
export type RedisTarget =
  | { readonly kind: "single"; readonly url: string }
  | {
      readonly kind: "sentinel";
      readonly sentinels: readonly { host: string; port: number }[];
      readonly name: string;
      readonly db: number;
      readonly tls: boolean;
      readonly username?: string;
      readonly password?: string;
    }
  | {
      readonly kind: "cluster";
      readonly nodes: readonly { host: string; port: number }[];
      readonly tls: boolean;
      readonly username?: string;
      readonly password?: string;
    };

const MULTI = /^(rediss?)\+(sentinel|cluster):\/\/(?:([^@/]*)@)?([^/?#@]+)(?:\/([^?#]*))?$/i;

/**
 * Reads a Redis URL (see the file's head for the shapes); throws `CRIER_ERR_INVALID_OPTION`
 * naming `from` (the setting) when it is none of them.
 */
export function parseRedisUrl(text: string, from = "url"): RedisTarget {
  const refuse = (why?: string) =>
    new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${from} must be a redis://, rediss://, redis+sentinel://host:port,…/name or redis+cluster://host:port,… URL such as redis://127.0.0.1:6379${why === undefined ? "" : ` (${why})`}, got ${JSON.stringify(redactUrl(text))}`,
    );
  const multi = MULTI.exec(text);
  if (multi === null) {
    let url: URL | undefined;
    try {
      url = new URL(text);
    } catch {}
    if (url === undefined || !["redis:", "rediss:"].includes(url.protocol) || url.hostname === "") {
      throw refuse();
    }
    return { kind: "single", url: text };
  }
  const [, scheme, kind, auth, hosts, path = ""] = multi as unknown as string[];
  const addresses = (hosts as string).split(",").map((hostPort) => {
    const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(hostPort.trim());
    const port = Number(m?.[2]);
    if (m === null || port < 1 || port > 65_535) {
      // With credentials in the URL, what was read as a host may be part of a password with a
      // "/" in it: never quoted.
      throw refuse(
        text.includes("@")
          ? 'a host is not host:port; in a password, "/", "?", "#" and "@" are percent-encoded (%2F, %3F, %23, %40)'
          : `"${hostPort}" is not host:port`,
      );
    }
    return { host: (m[1] as string).replace(/^\[|\]$/g, ""), port };
  });
  const decode = (part: string, what: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw refuse(`the ${what} is not percent-encoded UTF-8`);
    }
  };
  const credentials: { username?: string; password?: string } = {};
  if (auth !== undefined) {
    const colon = auth.indexOf(":");
    const user = decode(colon < 0 ? auth : auth.slice(0, colon), "user name");
    if (user !== "") credentials.username = user;
    if (colon >= 0) credentials.password = decode(auth.slice(colon + 1), "password");
  }
  const tls = (scheme as string).toLowerCase() === "rediss";
  const segments = path.split("/").filter((s) => s !== "");
  if (kind?.toLowerCase() === "cluster") {
    // Cluster has one database, 0.
    if (segments.length > 0) throw refuse("a Redis Cluster has no databases: no path");
    return { kind: "cluster", nodes: addresses, tls, ...credentials };
  }
  const [name, db = "0", ...rest] = segments;
  if (name === undefined || rest.length > 0 || !/^\d+$/.test(db)) {
    throw refuse("Sentinel needs the primary's name: /name or /name/db");
  }
  return {
    kind: "sentinel",
    sentinels: addresses,
    name: decode(name, "primary's name"),
    db: Number(db),
    tls,
    ...credentials,
  };
}

/**
 * `url` with any user name and password replaced by `***`, fit for logs and messages: all up to
 * the last `@`, and the value of any query parameter that may carry a credential (ioredis reads
 * `?password=…`).
 */
export function redactUrl(url: string): string {
  const scheme = /^[a-z][a-z\d+.-]*:\/\//i.exec(url)?.[0] ?? "";
  let rest = url.slice(scheme.length);
  // Up to the last `@` anywhere: a password may hold a raw `@`, `?`, `#` or `/`, and hiding too
  // much of a URL that holds an `@` elsewhere costs nothing.
  const at = rest.lastIndexOf("@");
  if (at !== -1) rest = `***${rest.slice(at)}`;
  return scheme + rest.replace(CREDENTIAL_PARAMETER, "$1***");
}

const CREDENTIAL_PARAMETER = /([?&][^=&#]*(?:pass|secret|token|key|auth|user)[^=&#]*=)[^&#]*/gi;

/** What a connection must do whatever the caller's options say (fail fast, no resend). */
export interface ConnectSettings {
  readonly base: ConnectionOptions;
  readonly retryStrategy: (times: number) => number;
}

/**
 * A connection to `target`, not yet connected (`lazyConnect` is in `base`). Behind Sentinel it
 * follows the primary: it listens for Sentinel's `+switch-master` and reconnects to the new
 * primary at once, and a write refused as READONLY (a demoted primary) reconnects too.
 */
export function connectRedis(target: RedisTarget, settings: ConnectSettings): RedisClient {
  const ioredis = loadIoredis();
  const { base, retryStrategy } = settings;
  if (target.kind === "single") return new ioredis.Redis(target.url, { ...base, retryStrategy });
  const auth = {
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
  };
  const tls = target.tls ? { tls: base.tls ?? {} } : {};
  if (target.kind === "sentinel") {
    const client = new ioredis.Redis({
      ...base,
      ...auth,
      ...tls,
      retryStrategy,
      sentinels: target.sentinels.map((s) => ({ ...s })),
      name: target.name,
      db: target.db,
      role: "master",
      failoverDetector: true,
      sentinelRetryStrategy: retryStrategy,
      // Without it a Sentinel that takes the connection and never answers (hung, stopped) is
      // waited on for ever, and the ones after it in the list are never asked.
      sentinelCommandTimeout: base.sentinelCommandTimeout ?? base.connectTimeout ?? 2000,
      reconnectOnError: (err) => err.message.startsWith("READONLY"),
    });
    // After QUIT, ioredis leaves the failover detector's subscriptions to the Sentinels open
    // (only disconnect() closes them), and they reconnect to the Sentinels for ever, keeping
    // the process alive: once the connection has ended for good, close them too.
    client.on("end", () => client.disconnect());
    return client;
  }
  // A NAT map is the cluster's to apply (to the addresses it announces), not each node's.
  const { lazyConnect, enableOfflineQueue, natMap, ...redisOptions } = base;
  return new ioredis.Cluster(
    target.nodes.map((n) => ({ ...n })),
    {
      redisOptions: { ...redisOptions, ...auth, ...tls },
      lazyConnect: lazyConnect ?? false,
      enableOfflineQueue: enableOfflineQueue ?? true,
      clusterRetryStrategy: retryStrategy,
      // A command whose connection closed may have run (a publish stored): ioredis would send
      // it again after 100 ms by default, storing it twice. It fails instead, as on one Redis
      // (`autoResendUnfulfilledCommands: false`): the publisher hears 503, "may be stored".
      // MOVED, ASK, TRYAGAIN and CLUSTERDOWN are still followed: those did not run.
      retryDelayOnFailover: 0,
      ...(natMap === undefined ? {} : { natMap }),
      // Every key of a prefix shares one slot (history/redis-keys.ts): reads go to its primary,
      // which holds the newest entries.
      scaleReads: "master",
    },
  );
}

/**
 * Loads ioredis, an optional peer dependency (only `crier-hub/redis` needs it), with an error that
 * says how to install it. `load` is for tests.
 */
export function loadIoredis(load: Require = requirePeer): typeof import("ioredis") {
  return loadPeer(
    load,
    "ioredis",
    "crier-hub/redis needs the ioredis package, an optional peer dependency: npm install ioredis",
  ) as typeof import("ioredis");
}
