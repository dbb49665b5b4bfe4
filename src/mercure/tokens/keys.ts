/**
 * Keys for Mercure tokens, in one place for verifying and minting: what a key is (an HMAC secret
 * or a PEM key), which algorithms it may use, and how one is read from configuration (inline, a
 * PEM file, a JWK Set file).
 *
 * The algorithm allowlist follows from the key's type, never from the token: `none`, an HMAC
 * signed with a public key, or a key named in the token's own header are refused by construction.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import { CrierError } from "../../errors.ts";

/** A verification key: an HMAC secret, or a PEM-encoded public key. */
export type KeySource = string;

/** A key ready to verify, and the algorithms it may verify. */
export interface Verifier {
  readonly key: KeyObject | Uint8Array | JWTVerifyGetKey;
  readonly algorithms: string[];
}

const HMAC = ["HS256", "HS384", "HS512"];
const RSA = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
const ASYMMETRIC = [...RSA, "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];
const CURVES: Readonly<Record<string, string>> = {
  prime256v1: "ES256",
  secp384r1: "ES384",
  secp521r1: "ES512",
};

/** True when `source` is a PEM-encoded key rather than an HMAC secret. */
export function isPem(source: string): boolean {
  return source.includes("-----BEGIN");
}

// The algorithms an asymmetric key may be used with, the preferred one (for signing) first.
function algorithmsOf(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return RSA;
    case "rsa-pss":
      return ["PS256", "PS384", "PS512"];
    case "ec": {
      const alg = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ""];
      if (alg !== undefined) return [alg];
      break;
    }
    case "ed25519":
      return ["EdDSA", "Ed25519"];
  }
  throw new CrierError(
    "CRIER_ERR_INVALID_OPTION",
    `unsupported JWT key type ${key.asymmetricKeyType}: use an HMAC secret, RSA, EC P-256/384/521 or Ed25519`,
  );
}

/**
 * Shortest HMAC secret accepted, in bytes: the output size of SHA-256. One token signed with a
 * shorter (human-chosen) secret is enough to guess the secret offline and sign any token.
 */
export const MIN_SECRET_BYTES = 32;

/**
 * Throws `CRIER_ERR_INVALID_OPTION` when `source` is an HMAC secret shorter than
 * {@link MIN_SECRET_BYTES}. `name` is the setting, `allow` how to accept a weak one anyway.
 */
export function checkSecretStrength(source: KeySource, name: string, allow: string): void {
  if (isPem(source)) return;
  const bytes = Buffer.byteLength(source, "utf8");
  if (bytes >= MIN_SECRET_BYTES) return;
  throw new CrierError(
    "CRIER_ERR_INVALID_OPTION",
    `${name} is an HMAC secret of ${bytes} byte${bytes === 1 ? "" : "s"}; use at least ${MIN_SECRET_BYTES} random bytes (openssl rand -hex 32), or ${allow}`,
  );
}

/**
 * Prepares a key and the algorithms it may verify; throws `CRIER_ERR_INVALID_OPTION` naming
 * `name` (the option or setting) for a PEM block that is no usable public key.
 */
export function prepareKey(source: KeySource, name = "the key"): Verifier {
  if (!isPem(source)) return { key: new TextEncoder().encode(source), algorithms: HMAC };
  let key: KeyObject;
  try {
    key = createPublicKey(source);
  } catch (err) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name} is a PEM block but no usable public key or certificate (${(err as Error).message})`,
      { cause: err },
    );
  }
  return { key, algorithms: algorithmsOf(key) };
}

/**
 * Prepares a JWK Set. A token picks its key by `kid` (and `alg`) among these keys only; HMAC
 * (`oct`) keys are never used, so a public JWK cannot be turned into an HMAC secret.
 */
export function prepareJwks(jwks: JSONWebKeySet): Verifier {
  if (typeof jwks !== "object" || jwks === null || !Array.isArray(jwks.keys)) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", 'a JWK Set is an object with a "keys" array');
  }
  return { key: createLocalJWKSet(jwks), algorithms: ASYMMETRIC };
}

/** The key and algorithm to sign with: HS256 for a secret, else the private key's own. */
export function prepareSigningKey(source: string): {
  signingKey: KeyObject | Uint8Array;
  alg: string;
} {
  if (!isPem(source)) return { signingKey: new TextEncoder().encode(source), alg: "HS256" };
  if (!source.includes("PRIVATE KEY")) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "minting a token needs the private key, not the public one",
    );
  }
  const signingKey = createPrivateKey(source);
  return { signingKey, alg: algorithmsOf(signingKey)[0] as string };
}

// What reads as a file path rather than a secret: a key given this way is never used as the
// secret itself, so a mistyped path cannot become a secret anyone can guess.
const PATH_LIKE = /^(?:\/|\.{1,2}\/|~)|\.(?:pem|key|json|jwks)$/i;

/**
 * A key given inline (secret or PEM) or as the path of a file holding one. A value that looks
 * like a path (starts with `/`, `./`, `../` or `~`, or ends in `.pem`, `.key`, `.json`, `.jwks`)
 * must name a readable file; `name` (the setting) is in the error otherwise.
 */
export function readKey(value: string, name = "the key"): string {
  if (isPem(value) || (!PATH_LIKE.test(value) && !existsSync(value))) return value;
  try {
    return readFileSync(value, "utf8");
  } catch (err) {
    // `openssl rand -base64 32` starts with `/` once in 64: that secret reads as a path, and
    // must not be printed (into logs) as one.
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && isBase64Secret(value)) {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        `${name} starts with "/" so it reads as a file path, and no such file exists; a base64 secret can start with "/": make one that cannot (openssl rand -hex 32)`,
        { cause: err },
      );
    }
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name}: ${value} ${unreadable(err)}; give the path of a readable key file, or the key itself`,
      { cause: err },
    );
  }
}

// What may be a secret rather than a path: 32 characters or more of the base64 alphabet alone
// (`openssl rand -base64 N`, padded or not, or with its padding cut off). A path of that length
// nearly always has a `.`, `-` or `_`; one that has none is not named, only said to be missing.
function isBase64Secret(value: string): boolean {
  return value.length >= 32 && /^[A-Za-z0-9+/]+={0,2}$/.test(value);
}

function unreadable(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case "ENOENT":
      return "does not exist";
    case "EISDIR":
      return "is a directory";
    case "EACCES":
    case "EPERM":
      return "cannot be read (permission denied)";
    default:
      return `cannot be read (${(err as Error).message})`;
  }
}

/**
 * A JWK Set file: JSON with a `keys` array; `name` (the setting) is in the error otherwise.
 * The file's content is never quoted: given a secret key file by mistake, JSON.parse's message
 * would print its first characters.
 */
export function readJwks(path: string, name = "--jwks"): JSONWebKeySet {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name}: ${path} ${unreadable(err)}; give the path of a JSON file holding a JWK Set`,
      { cause: err },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name}: ${path} is not JSON; give the path of a JSON file holding a JWK Set`,
    );
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", `${name}: ${path} has no "keys" array`);
  }
  return parsed as JSONWebKeySet;
}
