/**
 * One request and its answer, as the Mercure routes see them, whatever carries them: node:http
 * and node:http2 (`node-exchange.ts`) or a Fetch `Request` answered with a `Response`
 * (`fetch-exchange.ts`). The routes read the request and answer through this interface only, so
 * each transport runs the same handlers and no rule of the protocol is written twice.
 *
 * Invariant: an exchange is answered once, by `reply` or by `stream`; a second answer is
 * dropped (node:http: the connection is destroyed, as a half-sent answer cannot be repaired).
 */
import type { Hub, SubscribeOptions } from "../../hub.ts";
import type { Subscription } from "../../subscriber.ts";

/** Request headers by lower-case name (node:http's shape; `:authority` on HTTP/2). */
export type ExchangeHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** Response headers: names as written, values as sent. */
export type ReplyHeaders = Readonly<Record<string, string>>;

/** A request to a Mercure route, and the means to answer it. */
export interface Exchange {
  /** The request method, upper case. */
  readonly method: string;
  /** The request target as received: `/path?query` (origin-form) or an absolute URL. */
  readonly target: string;
  /** The request headers; `host` is always the authority the request was addressed to, if known. */
  readonly headers: ExchangeHeaders;
  /** True when the request came over TLS: the hub's own URL is then `https:`. */
  readonly secure: boolean;
  /** The client's address (the peer of the connection), when the transport knows it. */
  readonly remoteAddress: string | undefined;
  /** How many Host header lines the request had, where the transport can tell (node:http). */
  readonly hostLines?: number | undefined;
  /** True once the client has gone: nothing more is worth answering. */
  readonly gone: boolean;
  /** The whole request body; rejects with `CRIER_ERR_PAYLOAD_TOO_LARGE` past `limit` bytes. */
  body(limit: number): Promise<Buffer>;
  /** Answers with `status`, `headers` and a body (none for `HEAD`, whatever `body` holds). */
  reply(status: number, headers: ReplyHeaders, body?: string): void;
  /**
   * Asks for the connection to be closed once this request is answered (HTTP/1.1:
   * `Connection: close`), so that the client's next request opens a new one; a transport that
   * cannot (HTTP/2, which ends a session with GOAWAY; a Fetch runtime) does nothing.
   */
  lastOnConnection(): void;
  /** Answers with the event stream of a new subscription to `hub`, and returns it. */
  stream(hub: Hub, options: SubscribeOptions): Subscription;
}
