/**
 * Minting Mercure tokens, for the `crier token` command, dev mode and tests. Signs with an HMAC
 * secret (HS256) or a PEM private key (RS256, ES256/384/512, EdDSA).
 */
import { SignJWT } from "jose";
import { prepareSigningKey } from "./keys.ts";

/** What the token grants. */
export interface TokenOptions {
  /** Topic selectors the bearer may publish to. */
  readonly publish?: readonly string[] | undefined;
  /** Topic selectors the bearer may receive private updates for. */
  readonly subscribe?: readonly string[] | undefined;
  /**
   * Lifetime in seconds; omitted: the token does not expire (the command line's `crier token`
   * defaults to 3600 and asks for `--ttl 0` to mint one that never does).
   */
  readonly ttlSeconds?: number | undefined;
}

/** Signs a JWT carrying the `mercure` claim with `key` (secret or PEM private key). */
export async function mintToken(key: string, options: TokenOptions): Promise<string> {
  const mercure: Record<string, readonly string[]> = {};
  if (options.publish !== undefined) mercure.publish = options.publish;
  if (options.subscribe !== undefined) mercure.subscribe = options.subscribe;
  const { signingKey, alg } = prepareSigningKey(key);
  const jwt = new SignJWT({ mercure }).setProtectedHeader({ alg, typ: "JWT" }).setIssuedAt();
  if (options.ttlSeconds !== undefined) jwt.setExpirationTime(`${options.ttlSeconds}s`);
  return jwt.sign(signingKey);
}
