/**
 * The URLs the standalone hub is given, checked before it starts: the Redis and NATS URLs, the CORS
 * origins. A value that is not one is refused, naming it, rather than failing later or never
 * matching (a browser's `Origin` is compared exactly, so `https://app.example/` would match
 * nothing).
 */
import { serverOptions } from "../backplane/nats-client.ts";
import { parseRedisUrl, redactUrl } from "../backplane/redis-connect.ts";
import { CrierError } from "../errors.ts";
import { checkCorsOrigins, isOrigin } from "../mercure/http/origin.ts";

/** `url` with any user name and password replaced by `***`, fit for logs and messages. */
export { redactUrl as redact } from "../backplane/redis-connect.ts";

/**
 * A Redis URL: `redis://` or `rediss://` (one server), `redis+sentinel://` (a primary found
 * through Sentinel) or `redis+cluster://` (a Redis Cluster); `from` names the setting in the
 * error.
 */
export function redisUrlOf(text: string, from: string): string {
  parseRedisUrl(text, from);
  return text;
}

/** A `nats://` or `tls://` URL; `from` names the setting in the error. */
export function natsUrlOf(text: string, from: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {}
  if (url === undefined || !["nats:", "tls:"].includes(url.protocol) || url.hostname === "") {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${from} must be a nats:// or tls:// URL such as nats://127.0.0.1:4222, got ${JSON.stringify(redactUrl(text))}`,
    );
  }
  try {
    serverOptions(text);
  } catch (err) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", `${from}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return text;
}

/**
 * A comma-separated list of origins (`scheme://host[:port]`, http or https, as a browser sends
 * them in `Origin`) and/or `*` (any origin, without credentials). Empty entries are skipped.
 */
export function corsOriginsOf(text: string, from: string): string[] {
  const origins = text
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");
  checkCorsOrigins(origins, from);
  return origins;
}

/** The hub's public origin (`scheme://host[:port]`), or undefined when not set. */
export function publicOriginOf(text: string | undefined, from: string): string | undefined {
  if (text === undefined) return undefined;
  if (!isOrigin(text)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${from}: ${JSON.stringify(text)} is not an origin; give scheme://host[:port] (http or https, lower case, no path, query or default port)`,
    );
  }
  return text;
}
