/**
 * Minting Mercure tokens, for the `crier token` command, dev mode and tests. Signs with an HMAC
 * secret (HS256) or a PEM private key (RS256, ES256/384/512, EdDSA).
 */
import { createPrivateKey } from "node:crypto";
import { SignJWT } from "jose";
import { CrierError } from "../../errors.ts";

/** What the token grants. */
export interface TokenOptions {
  /** Topic selectors the bearer may publish to. */
  readonly publish?: readonly string[] | undefined;
  /** Topic selectors the bearer may receive private updates for. */
  readonly subscribe?: readonly string[] | undefined;
  /** Lifetime in seconds; omitted: the token does not expire. */
  readonly ttlSeconds?: number | undefined;
}

/** Signs a JWT carrying the `mercure` claim with `key` (secret or PEM private key). */
export async function mintToken(key: string, options: TokenOptions): Promise<string> {
  const mercure: Record<string, readonly string[]> = {};
  if (options.publish !== undefined) mercure.publish = options.publish;
  if (options.subscribe !== undefined) mercure.subscribe = options.subscribe;
  const { signingKey, alg } = signingKeyOf(key);
  const jwt = new SignJWT({ mercure }).setProtectedHeader({ alg, typ: "JWT" }).setIssuedAt();
  if (options.ttlSeconds !== undefined) jwt.setExpirationTime(`${options.ttlSeconds}s`);
  return jwt.sign(signingKey);
}

function signingKeyOf(key: string) {
  if (!key.includes("-----BEGIN"))
    return { signingKey: new TextEncoder().encode(key), alg: "HS256" };
  if (!key.includes("PRIVATE KEY")) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "minting a token needs the private key, not the public one",
    );
  }
  const signingKey = createPrivateKey(key);
  const type = signingKey.asymmetricKeyType;
  const curve = signingKey.asymmetricKeyDetails?.namedCurve;
  const alg =
    type === "rsa"
      ? "RS256"
      : type === "ed25519"
        ? "EdDSA"
        : ({ prime256v1: "ES256", secp384r1: "ES384", secp521r1: "ES512" }[curve ?? ""] ?? "");
  if (alg === "")
    throw new CrierError("CRIER_ERR_INVALID_OPTION", `unsupported private key type ${type}`);
  return { signingKey, alg };
}
