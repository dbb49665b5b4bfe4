/**
 * The URLs the standalone hub is given, checked before it starts: the Redis and NATS URLs and the CORS
 * origins. A value that is not one is refused, naming it, rather than failing later or never
 * matching (a browser's `Origin` is compared exactly, so `https://app.example/` would match
 * nothing).
 */
import { CrierError } from "../errors.ts";

/** `url` with any user name and password replaced by `***`, fit for logs and messages. */
export function redact(url: string): string {
  return url.replace(/^([a-z][a-z\d+.-]*:\/\/)?[^@]*@/i, "$1***@");
}

/** A `redis://` or `rediss://` URL; `from` names the setting in the error. */
export function redisUrlOf(text: string, from: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {}
  if (url === undefined || !["redis:", "rediss:"].includes(url.protocol) || url.hostname === "") {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${from} must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379, got ${JSON.stringify(redact(text))}`,
    );
  }
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
      `${from} must be a nats:// or tls:// URL such as nats://127.0.0.1:4222, got ${JSON.stringify(redact(text))}`,
    );
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
  for (const origin of origins) {
    if (origin !== "*" && !isOrigin(origin)) {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        `${from}: ${JSON.stringify(origin)} is not an origin; give scheme://host[:port] (http or https, lower case, no path, query or default port), or * alone`,
      );
    }
  }
  return origins;
}

// As the browser serializes it: the URL's own origin, and nothing more.
function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    const web = url.protocol === "http:" || url.protocol === "https:";
    // A browser's Origin never holds a wildcard; `https://*.example` would match nothing.
    return web && url.origin === text && !url.host.includes("*");
  } catch {
    return false;
  }
}
