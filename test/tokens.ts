/** Test helpers: keys and JWTs of every shape the hub must accept or refuse. */
import { createHmac, generateKeyPairSync, type KeyObject } from "node:crypto";
import { type JWTPayload, SignJWT } from "jose";

export const AUDIENCE = "https://hub.example/.well-known/mercure";
export const ISSUER = "https://issuer.example";

export interface KeyPair {
  readonly privateKey: KeyObject;
  /** The public key as PEM text, as the hub is configured with it. */
  readonly publicPem: string;
}

export function rsaKeys(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { privateKey, publicPem: publicKey.export({ type: "spki", format: "pem" }) as string };
}

export function ecKeys(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { privateKey, publicPem: publicKey.export({ type: "spki", format: "pem" }) as string };
}

export interface SignOptions {
  readonly alg?: string;
  readonly typ?: string;
  readonly kid?: string;
  /** Extra protected header parameters (`jwk`, `jku`…). */
  readonly header?: Record<string, unknown>;
}

/** Signs `claims` with a private key or an HMAC secret. */
export function sign(
  claims: JWTPayload,
  key: KeyObject | string,
  options: SignOptions = {},
): Promise<string> {
  const alg = options.alg ?? (typeof key === "string" ? "HS256" : algOf(key));
  const header = { ...options.header, alg, typ: options.typ ?? "JWT" };
  if (options.kid !== undefined) Object.assign(header, { kid: options.kid });
  return new SignJWT(claims)
    .setProtectedHeader(header)
    .sign(typeof key === "string" ? new TextEncoder().encode(key) : key);
}

/** An at+jwt access token with one `mercure` authorization detail per entry of `details`. */
export function accessToken(
  details: readonly unknown[],
  key: KeyObject | string,
  claims: JWTPayload = {},
  options: SignOptions = {},
): Promise<string> {
  return sign(
    {
      iss: ISSUER,
      aud: AUDIENCE,
      sub: "user-1",
      exp: Math.floor(Date.now() / 1000) + 3600,
      authorization_details: details,
      ...claims,
    },
    key,
    { typ: "at+jwt", ...options },
  );
}

/** A token with `alg: none` and no signature. */
export function unsigned(claims: JWTPayload): string {
  return `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`;
}

/** A token HMAC-signed with `secret` as raw bytes, whatever it is (e.g. a public key's PEM). */
export function hmacWith(secret: string, claims: JWTPayload, typ = "JWT"): string {
  const input = `${b64({ alg: "HS256", typ })}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

function algOf(key: KeyObject): string {
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "ed25519") return "EdDSA";
  return "ES256";
}
