/**
 * Where a request's token comes from: the `Authorization: Bearer` header, a query parameter
 * (opt-in) or a cookie, in the draft-08 order of precedence. How it came matters: a token from a
 * cookie is ambient (the browser sends it on any site's behalf), so a publish carrying one must
 * also prove its origin (see `http/origin.ts`).
 */
import { CrierError } from "../../errors.ts";
import type { ExchangeHeaders } from "./exchange.ts";

/** A presented token and the mechanism that carried it. */
export interface Credential {
  readonly token: string;
  readonly via: "header" | "query" | "cookie";
}

/**
 * Cookies that may carry the token, first found wins: `__Secure-mercure_access_token`,
 * `mercureAccessToken` (draft-08's recommended name) and `mercureAuthorization` (v0.x).
 */
export const TOKEN_COOKIES: readonly string[] = [
  "__Secure-mercure_access_token",
  "mercureAccessToken",
  "mercureAuthorization",
];

// `authorization` is the v0.x hub's name, `access_token` the RFC 6750 one draft-08 uses.
const TOKEN_PARAMS = ["authorization", "access_token"];

/**
 * The token of a request and how it came. `url` (the parsed request URL) is needed only to read
 * the query parameters; when `allowQuery` is false, a token in the query is refused with
 * `CRIER_ERR_BAD_REQUEST` rather than silently ignored.
 *
 * The query value is a bearer credential: it must never be logged; callers log `url.pathname`.
 */
export function credentialOf(
  req: { readonly headers: ExchangeHeaders },
  url?: URL,
  allowQuery = false,
): Credential | undefined {
  // [spec, draft-08] When more than one mechanism is present, the hub MUST select exactly one
  // token using the following precedence, from highest to lowest: the `Authorization` HTTP
  // header, then the `access_token` query parameter, then the cookie.
  const { authorization: header, cookie } = req.headers;
  if (typeof header === "string") {
    // [spec] This header MUST contain the string `Bearer` followed by a space character and by
    // the access token (RFC 6750). Anything else is a token that does not verify.
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return { token: match?.[1] ?? "", via: "header" };
  }
  if (url !== undefined) {
    for (const name of TOKEN_PARAMS) {
      const value = url.searchParams.get(name);
      if (value === null) continue;
      // [spec, draft-08] This method SHOULD NOT be used unless it is impossible to transport the
      // access token in the `Authorization` request header field or a secure cookie. Hubs MAY
      // support this method.
      if (!allowQuery) {
        throw new CrierError(
          "CRIER_ERR_BAD_REQUEST",
          `this hub does not accept a token in the "${name}" query parameter: send an Authorization header or a cookie`,
        );
      }
      return { token: value, via: "query" };
    }
  }
  const token = typeof cookie === "string" ? cookieToken(cookie) : undefined;
  return token === undefined ? undefined : { token, via: "cookie" };
}

function cookieToken(cookies: string): string | undefined {
  const found = new Map<string, string>();
  for (const part of cookies.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    if (TOKEN_COOKIES.includes(name) && !found.has(name))
      found.set(name, part.slice(eq + 1).trim());
  }
  for (const name of TOKEN_COOKIES) {
    const value = found.get(name);
    if (value === undefined) continue;
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}
