/**
 * JWT verification and Mercure topic authorization. Keys come from configuration only: an HS256
 * secret or a PEM public key (RSA, EC, Ed25519); the algorithm allowlist follows from the key's
 * type, so `none`, a key named in the token's own header, or an HMAC signed with a public key
 * are all refused by construction.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { errors as joseErrors, jwtVerify } from "jose";
import { CrierError } from "./errors.ts";

/** A verification key: an HMAC secret, or a PEM-encoded public key. */
export type KeySource = string;

/** What a verified token grants (the `mercure` claim). */
export interface Claims {
  /** Topic selectors the bearer may publish to. */
  readonly publish: readonly string[];
  /** Topic selectors the bearer may receive private updates for. */
  readonly subscribe: readonly string[];
  /** `mercure.payload`: user data shown in the bearer's subscription events. */
  readonly payload?: unknown;
  /** Expiry, in seconds since the epoch, if the token has one. */
  readonly exp?: number | undefined;
}

export type Role = "publisher" | "subscriber";

interface PreparedKey {
  readonly key: KeyObject | Uint8Array;
  readonly algorithms: string[];
}

/** Prepares a key and the algorithms it may verify. */
export function prepareKey(source: KeySource): PreparedKey {
  if (!source.includes("-----BEGIN")) {
    return { key: new TextEncoder().encode(source), algorithms: ["HS256", "HS384", "HS512"] };
  }
  const key = createPublicKey(source);
  switch (key.asymmetricKeyType) {
    case "rsa":
      return { key, algorithms: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] };
    case "rsa-pss":
      return { key, algorithms: ["PS256", "PS384", "PS512"] };
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const alg = { prime256v1: "ES256", secp384r1: "ES384", secp521r1: "ES512" }[curve ?? ""];
      if (alg !== undefined) return { key, algorithms: [alg] };
      break;
    }
    case "ed25519":
      return { key, algorithms: ["EdDSA", "Ed25519"] };
  }
  throw new CrierError(
    "CRIER_ERR_INVALID_OPTION",
    `unsupported JWT key type ${key.asymmetricKeyType}: use an HMAC secret, RSA, EC P-256/384/521 or Ed25519`,
  );
}

/** Options of {@link Authenticator}. */
export interface AuthenticatorOptions {
  /** Key for publishers' tokens. Without it, every publish is refused (401). */
  readonly publisherKey?: KeySource | undefined;
  /** Key for subscribers' tokens. Without it, subscriber tokens are refused (401). */
  readonly subscriberKey?: KeySource | undefined;
  /** Verified tokens remembered, so a publisher's token is not re-verified per request. Default 1,000. */
  readonly cacheSize?: number | undefined;
}

/** Verifies tokens for one role or the other, remembering recent successes until they expire. */
export class Authenticator {
  readonly #keys: Record<Role, PreparedKey | undefined>;
  readonly #cache = new Map<string, { role: Role; claims: Claims }>();
  readonly #cacheSize: number;

  constructor(options: AuthenticatorOptions) {
    this.#keys = {
      publisher: options.publisherKey === undefined ? undefined : prepareKey(options.publisherKey),
      subscriber:
        options.subscriberKey === undefined ? undefined : prepareKey(options.subscriberKey),
    };
    this.#cacheSize = options.cacheSize ?? 1000;
  }

  /** Verifies `token` for `role`; throws `CRIER_ERR_UNAUTHORIZED` with the reason. */
  async verify(token: string, role: Role): Promise<Claims> {
    const cached = this.#cache.get(token);
    if (cached !== undefined && cached.role === role && !isExpired(cached.claims)) {
      return cached.claims;
    }
    const prepared = this.#keys[role];
    if (prepared === undefined) {
      throw new CrierError("CRIER_ERR_UNAUTHORIZED", `no key is configured for ${role} tokens`);
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, prepared.key, { algorithms: prepared.algorithms }));
    } catch (err) {
      throw new CrierError("CRIER_ERR_UNAUTHORIZED", `invalid token: ${reason(err)}`, {
        cause: err,
      });
    }
    const claims = readClaims(payload);
    if (this.#cache.size >= this.#cacheSize) {
      this.#cache.delete(this.#cache.keys().next().value as string);
    }
    this.#cache.set(token, { role, claims });
    return claims;
  }
}

/** The token of a request: `Authorization: Bearer …`, else the `mercureAuthorization` cookie. */
export function tokenOf(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match?.[1] ?? "";
  }
  const cookies = req.headers.cookie;
  if (cookies === undefined) return undefined;
  for (const part of cookies.split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === "mercureAuthorization") {
      return decodeURIComponent(part.slice(eq + 1).trim());
    }
  }
  return undefined;
}

function readClaims(payload: Record<string, unknown>): Claims {
  const mercure = payload.mercure;
  const claim =
    typeof mercure === "object" && mercure !== null ? (mercure as Record<string, unknown>) : {};
  return {
    publish: strings(claim.publish),
    subscribe: strings(claim.subscribe),
    payload: claim.payload,
    exp: typeof payload.exp === "number" ? payload.exp : undefined,
  };
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function isExpired(claims: Claims): boolean {
  return claims.exp !== undefined && claims.exp * 1000 <= Date.now();
}

function reason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "token expired";
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "signing algorithm not allowed";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "signature does not verify";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return err.message;
  return "malformed token";
}
