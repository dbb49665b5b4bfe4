/**
 * What a server of the hub allows a client: the time to send its request (headers, then all of
 * it), how long an idle connection is kept, and the one-line answer a late or malformed request
 * gets. Shared by the node:http server and the TLS server (HTTP/1.1 and HTTP/2).
 */
import type { Duplex } from "node:stream";
import { CrierError } from "../../errors.ts";
import { durationOption } from "../../options.ts";
import type { HandlerOptions } from "./context.ts";

/** Defaults of {@link HubServerOptions}. */
export const SERVER_DEFAULTS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 65_000,
  maxConcurrentStreams: 100,
} as const;

/** Options of `createHubServer`: the handler's, and the server's own timeouts. */
export interface HubServerOptions extends HandlerOptions {
  /**
   * Time a client has to send the request line and headers, from its first byte; then it gets
   * `408` and the connection is closed (slowloris: a client that trickles a header byte every
   * few seconds to hold a connection). Default 10 s (node's own is 60 s); 0 turns it off.
   */
  readonly headersTimeoutMs?: number | undefined;
  /**
   * Time a client has to send its whole request, headers and body (a publish); then `408`.
   * Default 30 s; 0 turns it off. Neither timeout ever ends an event stream: they bound the
   * request, which a subscription has finished sending before its stream begins.
   */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * Time a connection with no request in progress and no stream open is kept: an HTTP/1.1
   * keep-alive connection between requests, an HTTP/2 session between streams. Default 65 s:
   * above common client and load-balancer idle timeouts, so the client closes first (node's own
   * 5 s races a publisher that reuses its connection just before its own 4 s limit while the
   * event loop is busy fanning out: ECONNRESET, seen under steady-10k load). 0 keeps idle
   * connections open. An event stream is never idle: it carries keep-alive comments.
   */
  readonly idleTimeoutMs?: number | undefined;
}

/** The request timeouts of a server, checked, and the one-line reason a late client is given. */
export interface RequestLimits {
  readonly headersTimeout: number;
  readonly requestTimeout: number;
  readonly idleTimeout: number;
  readonly checkEveryMs: number;
  readonly late: string;
}

export function requestLimits(options: HubServerOptions): RequestLimits {
  const headersTimeout = durationOption(
    "headersTimeoutMs",
    options.headersTimeoutMs,
    SERVER_DEFAULTS.headersTimeoutMs,
  );
  const requestTimeout = durationOption(
    "requestTimeoutMs",
    options.requestTimeoutMs,
    SERVER_DEFAULTS.requestTimeoutMs,
  );
  if (headersTimeout > 0 && requestTimeout > 0 && headersTimeout > requestTimeout) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `headersTimeoutMs (${headersTimeout}) must not exceed requestTimeoutMs (${requestTimeout}): the headers are part of the request`,
    );
  }
  // node:http looks for expired requests every `connectionsCheckingInterval` (30 s by default),
  // which would let a 2 s timeout run for 32 s: look four times per timeout instead. The check
  // walks only connections with a request still arriving, never the event streams.
  const shortest = Math.min(...[headersTimeout, requestTimeout].filter((t) => t > 0), 120_000);
  return {
    headersTimeout,
    requestTimeout,
    idleTimeout: durationOption(
      "idleTimeoutMs",
      options.idleTimeoutMs,
      SERVER_DEFAULTS.idleTimeoutMs,
    ),
    checkEveryMs: Math.min(30_000, Math.max(100, Math.floor(shortest / 4))),
    late: `the request did not arrive in time (headers within ${headersTimeout} ms, all of it within ${requestTimeout} ms; 0: no limit)`,
  };
}

// What node:http answers by itself to a request it cannot parse or that came too slowly (same
// statuses), with the one-line reason every refusal of the hub carries.
const CLIENT_ERRORS: Readonly<Record<string, readonly [string, string]>> = {
  HPE_HEADER_OVERFLOW: ["431 Request Header Fields Too Large", "the request headers are too large"],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: ["413 Payload Too Large", "the chunk extensions are too large"],
};

export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, late: string): void {
  const [status, reason] =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? ["408 Request Timeout", late]
      : (CLIENT_ERRORS[err.code ?? ""] ?? ["400 Bad Request", "the request is malformed"]);
  // As node:http does: answer only when no response of ours has begun on this connection.
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && inFlight?.headersSent !== true) {
    const body = `${reason}\n`;
    socket.write(
      `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * Answers an HTTP/1.1 CONNECT, which node:http hands to the server's `connect` event and, with
 * no listener, drops unanswered.
 */
export function answerConnect(_req: unknown, socket: Duplex): void {
  const body = "CONNECT is not served: this is a Mercure hub, not a proxy\n";
  socket.end(
    `HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, OPTIONS\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
