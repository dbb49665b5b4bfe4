/**
 * The request target and `Host` of a request, read defensively: node:http accepts request lines
 * that WHATWG `URL` refuses (`GET //:99999`, `GET http://a:99999/`, `GET http://[`), and a Host
 * header it does not check. Anything not understood is a 400 with the reason, never a throw in
 * the request listener.
 */
import { CrierError } from "../../errors.ts";
import type { Exchange } from "./exchange.ts";
import { hostOf } from "./origin.ts";

// RFC 3986 reg-name (letters, digits, `-._~`, sub-delims minus `,;` kept simple) or an IP literal,
// and an optional port.
const HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+=]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * Whether `host` is a `host[:port]` the URL parser takes as an authority: the hub's own URL is
 * made from it (the base of relative topics, the reserved namespace), so a port past 65535 or an
 * IP literal that is no address must be refused here, not fail to parse later.
 */
function isHost(host: string): boolean {
  if (!HOST.test(host)) return false;
  try {
    new URL(`http://${host}/`);
    return true;
  } catch {
    return false;
  }
}

/** True for an absolute-form request target (`http://host/path`, `https://…`). */
export function isAbsoluteForm(target: string): boolean {
  return /^https?:\/\//i.test(target);
}

/**
 * The path and query of the request as a URL (its origin is a placeholder: use `pathname` and
 * `searchParams` only). Origin-form targets (`/path?query`) are read as paths even when they
 * start with `//`; absolute-form targets (`http://host/path`) give their path and query.
 * Throws `CRIER_ERR_BAD_REQUEST` for any other form or a target that does not parse.
 */
export function requestUrl(ex: Pick<Exchange, "headers" | "target" | "hostLines" | "secure">): URL {
  // [spec, RFC 9112 §3.2] A server MUST respond with a 400 (Bad Request) status code to any
  // HTTP/1.1 request message that lacks a Host header field and to any request message that
  // contains more than one Host header field line or a Host header field with an invalid field
  // value. (node:http keeps the first of several; a proxy may have read another.)
  if ((ex.hostLines ?? 1) > 1) {
    throw new CrierError("CRIER_ERR_BAD_REQUEST", "the request has more than one Host header");
  }
  const { host: hostHeader, ":authority": authority } = ex.headers;
  if (typeof authority === "string" && typeof hostHeader === "string") {
    if (sameHost(hostHeader, ex.secure) !== sameHost(authority, ex.secure)) {
      throw new CrierError("CRIER_ERR_BAD_REQUEST", "the Host header differs from :authority");
    }
  }
  const host = hostOf(ex.headers);
  if (host !== undefined && !isHost(host)) {
    throw new CrierError("CRIER_ERR_BAD_REQUEST", "the Host header is not a valid host[:port]");
  }
  const { target } = ex;
  try {
    if (target.startsWith("/")) return new URL(`http://hub.invalid${target}`);
    if (isAbsoluteForm(target)) {
      const absolute = new URL(target);
      return new URL(`http://hub.invalid${absolute.pathname}${absolute.search}`);
    }
  } catch {
    // Falls through to the refusal below.
  }
  throw new CrierError(
    "CRIER_ERR_BAD_REQUEST",
    "the request target must be a path (/…) or an absolute http(s) URL",
  );
}

// A host[:port] as it names its entity: case, the scheme's default port and a final dot make
// no difference (over TLS, `example.com:443` and `Example.com.` are `example.com`; with any
// port, `example.com.:8443` is `example.com:8443`). One that does not parse stays as written.
function sameHost(host: string, secure: boolean): string {
  try {
    const { hostname, port } = new URL(`${secure ? "https" : "http"}://${host}/`);
    return `${hostname.replace(/\.$/, "")}:${port}`;
  } catch {
    return host;
  }
}
