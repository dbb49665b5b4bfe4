/**
 * A subscription as the world outside the core sees it: what it asks for (`Access`,
 * `SubscribeOptions`), the handle its owner and its transport get back (`Subscription`,
 * `Connection`), and why it ends (`CloseReason`).
 *
 * Invariant: what a caller hands `hub.connect()` is checked here, before anything is registered;
 * options that cannot work are a `CRIER_ERR_INVALID_OPTION`, never a TypeError from deep inside a
 * flush or a silent default.
 */
import { CrierError } from "./errors.ts";
import type { Selector, SelectorInput } from "./selectors/selector.ts";

/**
 * Why a subscriber ended. `overflow`: its queue hit a bound; `stalled`: its connection stayed
 * backed up for `STALLED_TICKS` keep-alive intervals; `expired`: its token's `exp` passed.
 */
export type CloseReason =
  | "client"
  | "overflow"
  | "stalled"
  | "shutdown"
  | "closed"
  | "expired"
  | "reset";

/** A live subscription, as its owner sees it. */
export interface Subscription {
  /** Unique id of this connection, a `urn:uuid:` URN (made when first asked for). */
  readonly id: string;
  /** The selectors as written. */
  readonly topics: readonly string[];
  readonly closed: boolean;
  /** Frames and bytes waiting to be written; bounded by the queue options. */
  readonly queued: { readonly events: number; readonly bytes: number };
  /** Ends the stream gracefully. */
  close(): void;
}

/** What an adapter holds after `hub.connect(sink)`: the subscription and the transport's two calls. */
export interface Connection extends Subscription {
  /** The sink can take more bytes (`drain`). */
  drained(): void;
  /**
   * The peer went away: `client` when it closed, `stalled` when the transport gave up on it
   * (nothing acknowledged for its timeout: a vanished peer or one that stopped reading).
   */
  gone(reason?: "client" | "stalled"): void;
}

/** Options of one subscription. */
export interface SubscribeOptions extends Access {
  /**
   * node:http only (`subscribeNode`): once the response head is written, take the socket away from node:http so
   * the request, the response and the parser are freed (about half the memory of an idle
   * subscriber; see BENCHMARKS.md). The stream is then close-delimited, and the request's and
   * response's own `close` events no longer fire: watch the hub's `disconnect` event instead.
   * Default false; the standalone hub turns it on.
   */
  readonly detach?: boolean | undefined;
  /** Resume after this id; overrides the request's `Last-Event-ID` header. */
  readonly lastEventId?: string | undefined;
  /** Extra response headers (CORS, …). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** What a subscriber asked for and what it may see. */
export interface Access {
  /**
   * Topic selectors of the subscription: plain strings (`*`, a URI template when it contains
   * `{`, else an exact topic), `{ exact }`, `{ template }` or `{ urlpattern, base? }` objects,
   * or selectors compiled by `compileSelector`. Compiled once, when the subscriber is made.
   */
  readonly topics: readonly (SelectorInput | Selector)[];
  /**
   * Token claims for which the subscriber may receive private updates: strings as in
   * `mercure.subscribe` (`*`, URI templates or exact topics), or compiled selectors (an access
   * token's matchers). Default: none.
   */
  readonly authorized?: readonly (string | Selector)[] | undefined;
  /**
   * When the subscription ends, in ms since the epoch (the token's `exp`): the stream is ended
   * gracefully so the client reconnects with a fresh token. Default: never.
   */
  readonly expiresAt?: number | undefined;
  /**
   * When the subscription ends at the latest, in ms since the epoch (a bound on a connection's
   * lifetime): checked at each keep-alive, so it may end up to one keep-alive interval later,
   * and it costs no timer of its own (a timer per idle subscriber is about half a kilobyte).
   * Without keep-alives it is never checked: use `expiresAt` then. Default: never.
   */
  readonly endsAt?: number | undefined;
}

// `hub.connect()` is public: options from plain JavaScript that cannot work are refused with a
// typed error before anything is registered.
export function assertAccess(access: Access): void {
  if (typeof access !== "object" || access === null || !Array.isArray(access.topics)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "subscription options need topics, an array of selectors",
    );
  }
  if (access.authorized !== undefined && !Array.isArray(access.authorized)) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", "authorized must be an array of selectors");
  }
  if (access.expiresAt !== undefined && !Number.isFinite(access.expiresAt)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "expiresAt must be a time in ms since the epoch",
    );
  }
  if (access.endsAt !== undefined && !Number.isFinite(access.endsAt)) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", "endsAt must be a time in ms since the epoch");
  }
  // The hub hands its whole SubscribeOptions over: a number id would never be found in the
  // history (a silent `earliest`), a string of headers would be spread into nonsense names.
  const { lastEventId, headers } = access as SubscribeOptions;
  if (lastEventId !== undefined && typeof lastEventId !== "string") {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", "lastEventId must be a string, an event id");
  }
  if (headers !== undefined && (typeof headers !== "object" || headers === null)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "headers must be an object of header names and values",
    );
  }
  // Checked here, as node:http's writeHead and the Fetch Headers check them, so that a bad one
  // is refused before anything is registered, whatever the transport: a head that failed once
  // the subscription was under way would only end it.
  for (const name in headers) {
    const value = (headers as Record<string, unknown>)[name];
    if (!HEADER_NAME.test(name)) {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        `headers: ${JSON.stringify(name)} is not a header name`,
      );
    }
    if (typeof value !== "string" || !HEADER_VALUE.test(value)) {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        `headers: the value of ${name} must be a string without control characters`,
      );
    }
  }
}

// RFC 9110 section 5.1 (a token) and 5.5 (field-value bytes, as node:http and Fetch take them).
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
