/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) for the hub as draft-08 describes it: served
 * when the hub has a resource identifier (`jwtAudience`), at the path RFC 9728 derives from it
 * (`/.well-known/oauth-protected-resource/.well-known/mercure` for the usual one), and named by
 * the `resource_metadata` parameter of every 401 and 403 challenge.
 */
import { AUTHORIZATION_DETAIL_TYPE } from "../tokens/verify.ts";
import { TOKEN_COOKIES } from "./credential.ts";
import type { Exchange } from "./exchange.ts";

const WELL_KNOWN = "/.well-known/oauth-protected-resource";

/** Where the metadata of the resource `audience` lives: its absolute URL and its path. */
export interface MetadataLocation {
  readonly url: string;
  readonly path: string;
}

/**
 * [spec, draft-08] the hub SHOULD publish OAuth 2.0 Protected Resource Metadata at the path
 * derived from its URL as defined in that specification. (RFC 9728 section 3: the well-known
 * suffix goes between the host and the path of the resource identifier.) `undefined` when
 * `audience` is not an absolute URL.
 */
export function metadataLocation(audience: string | undefined): MetadataLocation | undefined {
  if (audience === undefined) return undefined;
  let resource: URL;
  try {
    resource = new URL(audience);
  } catch {
    return undefined;
  }
  const path = `${WELL_KNOWN}${resource.pathname === "/" ? "" : resource.pathname}`;
  return { url: `${resource.origin}${path}`, path };
}

/** What the metadata document says about this hub. */
export interface MetadataOptions {
  readonly audience: string;
  readonly issuer?: string | undefined;
  readonly subscriptions: boolean;
}

/**
 * The metadata document. [spec, draft-08] a document that is published MUST include the
 * `resource` member […] and MAY include the others.
 */
export function metadataDocument(options: MetadataOptions): Record<string, unknown> {
  const doc: Record<string, unknown> = { resource: options.audience };
  // [spec, draft-08] `authorization_servers` (optional): issuer identifiers of the authorization
  // servers that can issue tokens for the hub. Omitted when tokens are self-issued.
  if (options.issuer !== undefined) doc.authorization_servers = [options.issuer];
  doc.authorization_details_types_supported = [AUTHORIZATION_DETAIL_TYPE];
  // [spec, draft-08] `bearer_methods_supported`: the RFC 6750 token presentation methods the hub
  // actually accepts: `header`. (The query parameter is an opt-in outside draft-08.)
  doc.bearer_methods_supported = ["header"];
  // [spec, draft-08] `mercure_cookie` (optional): a string, the name of the cookie in which the
  // hub also accepts the access token.
  doc.mercure_cookie = TOKEN_COOKIES[0];
  // [spec, draft-08] `mercure_subscriptions` (optional): […] omitted when the hub does not
  // implement it.
  if (options.subscriptions) doc.mercure_subscriptions = true;
  return doc;
}

/** Answers the metadata document as `application/json`. */
export function sendMetadata(
  ex: Exchange,
  options: MetadataOptions,
  headers: Readonly<Record<string, string>>,
): void {
  const json = JSON.stringify(metadataDocument(options));
  ex.reply(
    200,
    {
      ...headers,
      "Content-Type": "application/json",
      "Content-Length": String(Buffer.byteLength(json)),
      "X-Content-Type-Options": "nosniff",
    },
    json,
  );
}
