/**
 * JWT verification and Mercure topic authorization, for both protocol revisions at once: each
 * token is judged by its own revision's rules, so one hub serves v0.x and draft-08 clients.
 *
 * - A token whose header says `typ: at+jwt` is a draft-08 access token (RFC 9068): it needs
 *   `exp`, an `aud` naming the hub's resource identifier, the trusted `iss` when one is
 *   configured, and grants what its Mercure `authorization_details` (type
 *   `https://mercure.rocks/authorization-detail`) say.
 * - Any other token is a v0.x token: a valid signature and an unexpired `exp` if it has one; it
 *   grants what its `mercure` claim (`publish`, `subscribe`, `payload`) says.
 *
 * Keys come from configuration only (see `keys.ts`): an HMAC secret, a PEM public key (RSA, EC,
 * Ed25519) or a local JWK Set; a key named in the token's own header (`jwk`, `jku`, `x5u`) is
 * never used.
 */
import {
  decodeProtectedHeader,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyOptions,
  errors as joseErrors,
  jwtVerify,
} from "jose";
import { CrierError } from "../../errors.ts";
import { LruCache } from "../../lru.ts";
import { booleanOption, integerOption, objectArgument, stringOption } from "../../options.ts";
import {
  ANY_TOPIC,
  compileClaim,
  compileSelector,
  type Selector,
} from "../../selectors/selector.ts";
import {
  checkSecretStrength,
  type KeySource,
  prepareJwks,
  prepareKey,
  type Verifier,
} from "./keys.ts";

export { type Credential, credentialOf, TOKEN_COOKIES } from "../http/credential.ts";
export type { KeySource } from "./keys.ts";

/** Which rules a token was judged by. */
export type TokenRevision = "v0" | "draft-08";

/** What a verified token grants, whichever revision it follows. */
export interface Claims {
  /** `v0`: the `mercure` claim; `draft-08`: an `at+jwt` access token's `authorization_details`. */
  readonly revision: TokenRevision;
  /** Selectors of the topics the bearer may publish to. */
  readonly publish: readonly Selector[];
  /** Selectors of the topics the bearer may receive private updates for. */
  readonly subscribe: readonly Selector[];
  /** Subscription payloads, first match wins (see {@link payloadFor}). */
  readonly payloads: readonly SubscriptionPayload[];
  /**
   * The operator's right to read the hub's live figures (the dashboard): `v0`: `mercure.admin`
   * is `true`; `draft-08`: a Mercure authorization detail with the `admin` action. Default false.
   */
  readonly admin: boolean;
  /** The `sub` claim, if any. */
  readonly subject?: string | undefined;
  /** Expiry, in seconds since the epoch, if the token has one (draft-08 tokens always do). */
  readonly exp?: number | undefined;
}

/** A `payload` and the topic matchers of the grant it came with. */
export interface SubscriptionPayload {
  readonly topics: readonly Selector[];
  readonly payload: unknown;
}

export type Role = "publisher" | "subscriber";

/** Most Mercure authorization details in one token; more makes the token invalid. */
export const MAX_AUTHORIZATION_DETAILS = 64;
/** Most topic matchers in one authorization detail; more makes the token invalid. */
export const MAX_DETAIL_TOPICS = 256;

/** Options of {@link Authenticator}. */
export interface AuthenticatorOptions {
  /** Key for publishers' tokens. Without it (and without `jwks`), every publish is refused. */
  readonly publisherKey?: KeySource | undefined;
  /** Key for subscribers' tokens. Without it (and without `jwks`), subscriber tokens are refused. */
  readonly subscriberKey?: KeySource | undefined;
  /** Public keys for the tokens of any role that has no key of its own. Default none. */
  readonly jwks?: JSONWebKeySet | undefined;
  /**
   * The trusted issuer: `at+jwt` tokens must carry it as `iss`. Without it, `at+jwt` tokens are
   * refused (draft-08 requires the check); a self-issuing publisher names its own stable
   * identifier here. v0.x tokens are never checked for `iss`.
   */
  readonly issuer?: string | undefined;
  /**
   * The hub's resource identifier: `at+jwt` tokens must name it in `aud`. Without it, `at+jwt`
   * tokens are refused (draft-08 requires the check). v0.x tokens are never checked for `aud`.
   */
  readonly audience?: string | undefined;
  /**
   * Accept an HMAC secret shorter than 32 bytes. Default false: such a key is refused with
   * `CRIER_ERR_INVALID_OPTION`, since one token signed with it lets anyone guess it offline.
   * Only for tests and keys you cannot change.
   */
  readonly allowWeakKey?: boolean | undefined;
  /** Verified tokens remembered, so a publisher's token is not re-verified per request. Default 1,000. */
  readonly cacheSize?: number | undefined;
}

/** Verifies tokens for one role or the other, remembering recent successes until they expire. */
export class Authenticator {
  readonly #verifiers: Record<Role, Verifier | undefined>;
  readonly #issuer: string | undefined;
  readonly #audience: string | undefined;
  readonly #cache: LruCache<string, Claims>;

  constructor(options: AuthenticatorOptions) {
    objectArgument(
      options,
      "new Authenticator needs options: { publisherKey?, subscriberKey?, jwks?, issuer?, audience? }",
    );
    const jwks = options.jwks === undefined ? undefined : prepareJwks(options.jwks);
    // A key is a secret or a PEM text: a Buffer or a KeyObject would be read as something else.
    const publisherKey = stringOption("publisherKey", options.publisherKey, true);
    const subscriberKey = stringOption("subscriberKey", options.subscriberKey, true);
    if (!booleanOption("allowWeakKey", options.allowWeakKey, false)) {
      const allow = "set allowWeakKey";
      if (publisherKey !== undefined) checkSecretStrength(publisherKey, "publisherKey", allow);
      if (subscriberKey !== undefined) checkSecretStrength(subscriberKey, "subscriberKey", allow);
    }
    this.#verifiers = {
      publisher: publisherKey === undefined ? jwks : prepareKey(publisherKey, "publisherKey"),
      subscriber: subscriberKey === undefined ? jwks : prepareKey(subscriberKey, "subscriberKey"),
    };
    this.#issuer = stringOption("issuer", options.issuer, true);
    this.#audience = stringOption("audience", options.audience, true);
    this.#cache = new LruCache(integerOption("cacheSize", options.cacheSize, 1000, 1));
  }

  /**
   * Verifies `token` for `role`; throws `CRIER_ERR_INVALID_TOKEN` with the reason. `base` (the
   * hub's URL) resolves relative `URLPattern` matchers of access tokens.
   */
  async verify(token: string, role: Role, base?: string): Promise<Claims> {
    if (role !== "publisher" && role !== "subscriber") {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        `verify's role must be "publisher" or "subscriber", got ${JSON.stringify(role)}`,
      );
    }
    if (typeof token !== "string") throw invalid("malformed token: not a string");
    const cacheKey = `${role}\u0000${base ?? ""}\u0000${token}`;
    const cached = this.#cache.get(cacheKey);
    if (cached !== undefined && !isExpired(cached)) return cached;
    const verifier = this.#verifiers[role];
    if (verifier === undefined) throw invalid(`no key is configured for ${role} tokens`);
    let accessToken: boolean;
    try {
      accessToken = isAccessTokenType(decodeProtectedHeader(token).typ);
    } catch (err) {
      throw invalid("malformed token", err);
    }
    const options: JWTVerifyOptions = { algorithms: verifier.algorithms };
    if (accessToken) {
      // [spec, draft-08] Hubs MUST be configured with their resource identifier and MUST verify
      // that it appears in the token `aud` claim.
      if (this.#audience === undefined) {
        throw invalid("access tokens (typ at+jwt) need the hub's resource identifier configured");
      }
      // [spec, draft-08] Hubs MUST verify that the `iss` claim is present and exactly matches
      // the issuer identifier of one of the hub's trusted issuers.
      if (this.#issuer === undefined) {
        throw invalid("access tokens (typ at+jwt) need the hub's trusted issuer configured");
      }
      // [spec, draft-08] Hubs MUST verify that the token header `typ` is `at+jwt` […] MUST
      // enforce the `exp` claim […] and MUST enforce the `nbf` claim if present.
      options.typ = "at+jwt";
      options.audience = this.#audience;
      options.requiredClaims = ["exp"];
      options.issuer = this.#issuer;
    }
    let payload: JWTPayload;
    try {
      ({ payload } =
        typeof verifier.key === "function"
          ? await jwtVerify(token, verifier.key, options)
          : await jwtVerify(token, verifier.key, options));
    } catch (err) {
      throw invalid(`invalid token: ${reason(err)}`, err);
    }
    const claims = accessToken ? readAccessToken(payload, base) : readMercureClaim(payload);
    this.#cache.set(cacheKey, claims);
    return claims;
  }
}

/**
 * The payload attached to a subscription whose own matcher is `matcher`: the first grant whose
 * topics match it, treating the matcher string as if it were a topic (draft-08 Payloads); for a
 * v0.x token, its `mercure.payload`.
 */
export function payloadFor(claims: Claims, matcher: string): unknown {
  for (const grant of claims.payloads) {
    if (grant.topics.some((selector) => selector.kind === "any" || selector.test(matcher))) {
      return grant.payload;
    }
  }
  return undefined;
}

// RFC 9068: `typ` is `at+jwt`, and a media type may carry the `application/` prefix.
function isAccessTokenType(typ: unknown): boolean {
  return typeof typ === "string" && typ.toLowerCase().replace(/^application\//, "") === "at+jwt";
}

function readMercureClaim(payload: JWTPayload): Claims {
  const mercure = payload.mercure;
  const claim =
    typeof mercure === "object" && mercure !== null ? (mercure as Record<string, unknown>) : {};
  return {
    revision: "v0",
    publish: strings(claim.publish).map(compileClaim),
    subscribe: strings(claim.subscribe).map(compileClaim),
    payloads: claim.payload === undefined ? [] : [{ topics: [ANY], payload: claim.payload }],
    // Only the JSON boolean: a string "false" must not grant anything.
    admin: claim.admin === true,
    subject: payload.sub,
    exp: payload.exp,
  };
}

/** [spec, draft-08] The type of a Mercure authorization detail, compared byte by byte. */
export const AUTHORIZATION_DETAIL_TYPE = "https://mercure.rocks/authorization-detail";

// [spec, draft-08] If any Mercure authorization detail fails to parse or validate (including
// failures specific to a matcher's `match_type`), the hub MUST reject the token the same way and
// MUST NOT act on the basis of the remaining entries; partial acceptance is forbidden.
function readAccessToken(payload: JWTPayload, base: string | undefined): Claims {
  const publish: Selector[] = [];
  const subscribe: Selector[] = [];
  const payloads: SubscriptionPayload[] = [];
  let admin = false;
  const details = payload.authorization_details;
  // [spec, draft-08] Tokens with no Mercure authorization detail grant no publish or subscribe
  // rights.
  if (details !== undefined) {
    if (!Array.isArray(details)) throw invalid("authorization_details must be an array");
    let count = 0;
    for (const detail of details) {
      if (typeof detail !== "object" || detail === null || Array.isArray(detail)) {
        throw invalid("each authorization_details entry must be an object");
      }
      const entry = detail as Record<string, unknown>;
      // [spec, draft-08] MUST have a `type` property whose value is the string
      // `https://mercure.rocks/authorization-detail`, compared byte by byte.
      // Details of other types are for other resources (RFC 9396): not ours to judge.
      if (entry.type !== AUTHORIZATION_DETAIL_TYPE) continue;
      if (++count > MAX_AUTHORIZATION_DETAILS) {
        throw invalid(`more than ${MAX_AUTHORIZATION_DETAILS} Mercure authorization details`);
      }
      const actions = readActions(entry.actions);
      const topics = readTopics(entry.topics, base);
      if (actions.has("publish")) publish.push(...topics);
      if (actions.has("subscribe")) subscribe.push(...topics);
      // Crier's own action: other hubs ignore it, as the spec has them ignore unknown actions.
      if (actions.has("admin")) admin = true;
      if (entry.payload !== undefined) {
        if (
          typeof entry.payload !== "object" ||
          entry.payload === null ||
          Array.isArray(entry.payload)
        ) {
          throw invalid("an authorization detail's payload must be a JSON object");
        }
        // [spec, draft-08] MAY have a `payload` property (a JSON object), meaningful only for the
        // `subscribe` action.
        if (actions.has("subscribe")) payloads.push({ topics, payload: entry.payload });
      }
    }
  }
  return {
    revision: "draft-08",
    publish,
    subscribe,
    payloads,
    admin,
    subject: payload.sub,
    exp: payload.exp,
  };
}

// [spec, draft-08] MUST have an `actions` property: a non-empty JSON array of strings […] Hubs
// MUST ignore action values they do not recognize: an unrecognized action grants nothing, and
// its presence does not invalidate the token. […] A non-string entry in `actions` remains a
// validation failure.
function readActions(value: unknown): Set<string> {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalid("an authorization detail needs a non-empty actions array");
  }
  for (const action of value) {
    if (typeof action !== "string") {
      throw invalid(`action ${JSON.stringify(action)} is not a string`);
    }
  }
  return new Set(value as string[]);
}

// [spec, draft-08] MUST have a `topics` property: a non-empty JSON array of topic matcher objects.
// [A topic matcher object] MUST be a JSON object with a `match` property […] and MAY have an
// OPTIONAL `match_type` property […] case-sensitive and MUST be the name of a matcher type
// supported by the hub; this document defines `exact` and `urlpattern`. […] a `match_type` the
// hub does not support MUST cause the token to be rejected […] If no `match_type` key is present,
// the hub MUST assume the `exact` matcher type. A `match` value of `*` is the reserved wildcard
// and matches every topic regardless of `match_type`.
function readTopics(value: unknown, base: string | undefined): Selector[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalid("an authorization detail needs a non-empty topics array");
  }
  if (value.length > MAX_DETAIL_TOPICS) {
    throw invalid(`more than ${MAX_DETAIL_TOPICS} topics in one authorization detail`);
  }
  return value.map((item: unknown) => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      throw invalid("each topic matcher must be an object");
    }
    const matcher = item as Record<string, unknown>;
    // The spelling of an earlier draft. Ignoring it would silently read a URL pattern as an
    // exact topic; refusing says what to change.
    if ("matchType" in matcher) {
      throw invalid('a topic matcher has "matchType": draft-08 spells it "match_type"');
    }
    const { match } = matcher;
    const type = matcher.match_type ?? "exact";
    if (typeof match !== "string" || match === "") {
      throw invalid("a topic matcher needs a non-empty match string");
    }
    if (type !== "exact" && type !== "urlpattern") {
      throw invalid(`unknown match_type ${JSON.stringify(type)}: use exact or urlpattern`);
    }
    if (match === ANY_TOPIC) return ANY;
    try {
      return compileSelector(type === "exact" ? { exact: match } : { urlpattern: match, base });
    } catch (err) {
      throw invalid(`a topic matcher is invalid: ${(err as Error).message}`, err);
    }
  });
}

const ANY = compileSelector(ANY_TOPIC);

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function isExpired(claims: Claims): boolean {
  return claims.exp !== undefined && claims.exp * 1000 <= Date.now();
}

function invalid(message: string, cause?: unknown): CrierError {
  return new CrierError(
    "CRIER_ERR_INVALID_TOKEN",
    message,
    cause === undefined ? undefined : { cause },
  );
}

function reason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "token expired";
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "signing algorithm not allowed";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "signature does not verify";
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "no key of the JWK Set matches";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return err.message;
  return "malformed token";
}
