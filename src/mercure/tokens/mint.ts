/**
 * Minting Mercure tokens, for the `crier token` command, dev mode and tests. Signs with an HMAC
 * secret (HS256) or a PEM private key (RS256, ES256/384/512, EdDSA). Two shapes:
 *
 * - {@link mintToken}: a v0.x token, the grants in its `mercure` claim;
 * - {@link mintAccessToken}: a draft-08 access token (RFC 9068, `typ: at+jwt`), the grants in
 *   Mercure `authorization_details`.
 */
import { SignJWT } from "jose";
import { CrierError } from "../../errors.ts";
import {
  integerOption,
  kindOf,
  objectArgument,
  stringListOption,
  stringOption,
} from "../../options.ts";
import { prepareSigningKey } from "./keys.ts";
import { AUTHORIZATION_DETAIL_TYPE } from "./verify.ts";

/** What the token grants. */
export interface TokenOptions {
  /** Topic selectors the bearer may publish to. */
  readonly publish?: readonly string[] | undefined;
  /** Topic selectors the bearer may receive private updates for. */
  readonly subscribe?: readonly string[] | undefined;
  /** Grant the `admin` right (`mercure.admin: true`): the dashboard's figures. Default false. */
  readonly admin?: boolean | undefined;
  /**
   * Lifetime in seconds; omitted: the token does not expire (the command line's `crier token`
   * defaults to 3600 and asks for `--ttl 0` to mint one that never does).
   */
  readonly ttlSeconds?: number | undefined;
}

/** Signs a JWT carrying the `mercure` claim with `key` (secret or PEM private key). */
export async function mintToken(key: string, options: TokenOptions): Promise<string> {
  signingKeyArgument(key, "mintToken");
  objectArgument(options, "mintToken needs options: { publish?, subscribe?, admin?, ttlSeconds? }");
  const mercure: Record<string, readonly string[] | boolean> = {};
  const publish = stringListOption("publish", options.publish);
  const subscribe = stringListOption("subscribe", options.subscribe);
  if (publish !== undefined) mercure.publish = publish;
  if (subscribe !== undefined) mercure.subscribe = subscribe;
  if (options.admin === true) mercure.admin = true;
  const ttl =
    options.ttlSeconds === undefined
      ? undefined
      : integerOption("ttlSeconds", options.ttlSeconds, 0);
  const { signingKey, alg } = prepareSigningKey(key);
  const jwt = new SignJWT({ mercure }).setProtectedHeader({ alg, typ: "JWT" }).setIssuedAt();
  if (ttl !== undefined) jwt.setExpirationTime(`${ttl}s`);
  return jwt.sign(signingKey);
}

// The key signs: an HMAC secret or a PEM private key, as text.
function signingKeyArgument(key: unknown, where: string): void {
  if (typeof key !== "string" || key === "") {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${where} needs the signing key as its first argument: an HMAC secret or a PEM private key, as a string; got ${kindOf(key)}`,
    );
  }
}

// Each matcher is `{ match, match_type? }`, as the token will carry it.
function matchersOption(name: string, value: unknown): readonly TopicMatcher[] | undefined {
  if (value === undefined) return undefined;
  const valid =
    Array.isArray(value) &&
    value.every(
      (m: { match?: unknown; match_type?: unknown } | null) =>
        typeof m === "object" &&
        m !== null &&
        typeof m.match === "string" &&
        m.match !== "" &&
        (m.match_type === undefined || m.match_type === "exact" || m.match_type === "urlpattern"),
    );
  if (!valid) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name} must be an array of { match, match_type?: "exact" | "urlpattern" }, got ${kindOf(value)}`,
    );
  }
  return value;
}

/** A draft-08 topic matcher: `exact` (the default) or `urlpattern`; `*` matches every topic. */
export interface TopicMatcher {
  readonly match: string;
  readonly match_type?: "exact" | "urlpattern" | undefined;
}

/** What a draft-08 access token grants, and to whom it is addressed. */
export interface AccessTokenOptions {
  /** The hub's resource identifier, the token's `aud`. Required: hubs refuse tokens without it. */
  readonly audience: string;
  /** The `iss` claim. Default none (a hub that trusts an issuer refuses the token). */
  readonly issuer?: string | undefined;
  /** The `sub` claim. Default none. */
  readonly subject?: string | undefined;
  /** Topic matchers the bearer may publish to. Default none. */
  readonly publish?: readonly TopicMatcher[] | undefined;
  /** Topic matchers the bearer may receive private updates for. Default none. */
  readonly subscribe?: readonly TopicMatcher[] | undefined;
  /**
   * Grant the `admin` right: one more authorization detail with the `admin` action (its topics
   * `*`, since the spec requires some; the right is not per topic). Default false.
   */
  readonly admin?: boolean | undefined;
  /** Lifetime in seconds. Default 3,600: access tokens always expire. */
  readonly ttlSeconds?: number | undefined;
}

/**
 * Signs a draft-08 access token: header `typ: at+jwt`, `aud`, `exp`, `iat`, and one Mercure
 * authorization detail per action that has topics.
 */
export async function mintAccessToken(key: string, options: AccessTokenOptions): Promise<string> {
  signingKeyArgument(key, "mintAccessToken");
  objectArgument(
    options,
    "mintAccessToken needs options: { audience, issuer?, subject?, publish?, subscribe?, ttlSeconds? }",
  );
  const audience = stringOption("audience", options.audience, true);
  if (audience === undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "mintAccessToken needs audience: the hub's resource identifier (its jwtAudience)",
    );
  }
  const issuer = stringOption("issuer", options.issuer, true);
  const subject = stringOption("subject", options.subject, true);
  const ttl = integerOption("ttlSeconds", options.ttlSeconds, 3600);
  const details: Record<string, unknown>[] = [];
  for (const action of ["publish", "subscribe"] as const) {
    const topics = matchersOption(action, options[action]);
    if (topics === undefined || topics.length === 0) continue;
    details.push({ type: AUTHORIZATION_DETAIL_TYPE, actions: [action], topics });
  }
  if (options.admin === true) {
    details.push({ type: AUTHORIZATION_DETAIL_TYPE, actions: ["admin"], topics: [{ match: "*" }] });
  }
  const { signingKey, alg } = prepareSigningKey(key);
  const jwt = new SignJWT({ authorization_details: details })
    .setProtectedHeader({ alg, typ: "at+jwt" })
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(`${ttl}s`);
  if (issuer !== undefined) jwt.setIssuer(issuer);
  if (subject !== undefined) jwt.setSubject(subject);
  return jwt.sign(signingKey);
}
