/**
 * The one way every route reads and checks a request's token: the same precedence (header,
 * opt-in query parameter, cookies) and the same base for relative URL patterns in its claims.
 */
import type { Claims, Role } from "../tokens/verify.ts";
import type { HttpContext } from "./context.ts";
import { type Credential, credentialOf } from "./credential.ts";
import type { Exchange } from "./exchange.ts";
import { hubUrlOf } from "./origin.ts";

/** A verified token and how it came with the request. */
export interface Verified {
  readonly claims: Claims;
  readonly via: Credential["via"];
}

/**
 * The request's token verified for `role`, or `undefined` when it presented none. Throws the
 * `CrierError` of a token that does not verify (401) or of a refused query parameter (400).
 */
export async function verifyRequest(
  ctx: HttpContext,
  ex: Exchange,
  url: URL,
  role: Role,
): Promise<Verified | undefined> {
  const credential = credentialOf(ex, url, ctx.authorizationQuery);
  if (credential === undefined) return undefined;
  const claims = await ctx.auth.verify(
    credential.token,
    role,
    hubUrlOf(ex, url.pathname, ctx.publicOrigin),
  );
  return { claims, via: credential.via };
}
