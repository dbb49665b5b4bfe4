/**
 * The hub over HTTPS: HTTP/2, and HTTP/1.1 to clients that do not offer it (ALPN), on one port,
 * with the same request bounds as the plain server, and a registry of its connections so that
 * shutdown can close them.
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  type ServerHttp2Stream,
} from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createSecureContext } from "node:tls";
import { CrierError } from "../../errors.ts";
import { integerOption } from "../../options.ts";
import {
  answerClientError,
  answerConnect,
  type HubServerOptions,
  requestLimits,
  SERVER_DEFAULTS,
} from "./limits.ts";
import { createHandler } from "./server.ts";

// [RFC 9113 §7] CANCEL (0x8): the stream is no longer needed.
const NGHTTP2_CANCEL = 0x8;

/**
 * Options of {@link createSecureHubServer}: the handler's, the request timeouts (which bound the
 * TLS handshake, the HTTP/1.1 requests and each HTTP/2 request alike), and the TLS certificate
 * and key.
 */
export interface SecureHubServerOptions extends HubServerOptions {
  /** The certificate chain, PEM. */
  readonly cert: string | Buffer;
  /** The private key of the certificate, PEM. */
  readonly key: string | Buffer;
  /**
   * Most streams a client may open at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_
   * STREAMS): each event stream holds one for its lifetime, so this bounds what one connection
   * can hold. Default 100 (node's own is unbounded); a browser queues streams past it.
   */
  readonly maxConcurrentStreams?: number | undefined;
}

// The connections of each secure server: its HTTP/2 sessions, closed gracefully (GOAWAY) on
// shutdown, and every TLS socket (HTTP/2 or HTTP/1.1), dropped once the grace has passed; the
// http2 server has no closeAllConnections of its own.
export const secureConnections = new WeakMap<
  Http2SecureServer,
  { sessions: Set<Http2Session>; sockets: Set<Socket> }
>();

/**
 * Throws `CRIER_ERR_INVALID_OPTION` unless `cert` and `key` are a PEM certificate and its private
 * key. Checked here rather than left to OpenSSL, which checks a key against the certificate only
 * when both are of one type: an EC key beside an RSA certificate loads, then fails every
 * handshake. `names` say what each is called in the message (a flag, an option).
 */
export function checkTlsPair(
  cert: string | Buffer,
  key: string | Buffer,
  names = { cert: "cert", key: "key" },
): void {
  const notAPair = (err: unknown) =>
    new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${names.cert} and ${names.key} are not a PEM certificate and its private key (${(err as Error).message})`,
    );
  // An encrypted key would need a passphrase node asks no one for: its own error says only
  // "interrupted or cancelled".
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(String(key))) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${names.key} is encrypted (it needs a passphrase): give its key unencrypted (openssl pkey -in encrypted.pem -out key.pem)`,
    );
  }
  let matches: boolean;
  try {
    matches = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw notAPair(err);
  }
  if (!matches) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${names.key} is not the private key of ${names.cert}'s certificate`,
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw notAPair(err);
  }
}

// node:http's default `maxHeaderSize`.
const HEADER_LIST_BYTES = 16 * 1024;

/**
 * An HTTPS server for the hub that speaks HTTP/2, and HTTP/1.1 to clients that do not offer it
 * (ALPN), on the same port. Over HTTP/2 a browser multiplexes every EventSource of an origin on
 * one connection, instead of six HTTP/1.1 connections at most.
 */
export function createSecureHubServer(options: SecureHubServerOptions): Http2SecureServer {
  const { cert, key, maxConcurrentStreams, ...handler } = options;
  checkTlsPair(cert, key);
  const limits = requestLimits(options);
  const settings = {
    // The request headers node:http takes on HTTP/1.1 (its default `maxHeaderSize`), not the
    // 64 KB node:http2 would: one limit on the same port whatever the protocol.
    maxHeaderListSize: HEADER_LIST_BYTES,
    maxConcurrentStreams: integerOption(
      "maxConcurrentStreams",
      maxConcurrentStreams,
      SERVER_DEFAULTS.maxConcurrentStreams,
      1,
      2 ** 31 - 1,
    ),
  };
  const server = createSecureServer(
    {
      cert,
      key,
      allowHTTP1: true,
      settings,
      // A client that opens a connection and never finishes its handshake holds a socket: the
      // headers timeout bounds that too (node's own is 120 s).
      ...(limits.headersTimeout > 0 ? { handshakeTimeout: limits.headersTimeout } : {}),
    },
    createHandler(handler),
  );
  // HTTP/1.1 on this port goes through node:http's own connection handling, which reads these
  // from the server (node's http2 defaults: 60 s, 5 min, and no idle bound at all).
  Object.assign(server, {
    headersTimeout: limits.headersTimeout,
    requestTimeout: limits.requestTimeout,
    connectionsCheckingInterval: limits.checkEveryMs,
    keepAliveTimeout: limits.idleTimeout,
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) =>
    answerClientError(err, socket, limits.late),
  );
  // HTTP/1.1 CONNECT on this port; HTTP/2's is answered 405 by node:http2 itself.
  server.on("connect", answerConnect);
  const tracked = { sessions: new Set<Http2Session>(), sockets: new Set<Socket>() };
  secureConnections.set(server, tracked);
  server.on("session", (session: Http2Session) => {
    tracked.sessions.add(session);
    session.once("close", () => tracked.sessions.delete(session));
    // An idle session (no stream open, nothing received) is closed like an idle HTTP/1.1
    // keep-alive connection; one holding an event stream is never idle (keep-alive comments).
    if (limits.idleTimeout > 0) {
      session.setTimeout(limits.idleTimeout, () => {
        if (openStreams(session) === 0) session.close();
      });
    }
  });
  server.on("stream", (stream: ServerHttp2Stream) => {
    countStream(stream);
    if (limits.requestTimeout > 0) boundRequest(stream, limits.requestTimeout, limits.late);
  });
  server.on("secureConnection", (socket: Socket) => {
    tracked.sockets.add(socket);
    socket.once("close", () => tracked.sockets.delete(socket));
  });
  // A TLS handshake that fails (a client that does not trust the certificate) is the client's
  // business: without a listener the error would reach the process.
  server.on("tlsClientError", () => {});
  return server;
}

// Streams open on each session, counted from the server's 'stream' events.
const streamsOpen = new WeakMap<Http2Session, number>();

function openStreams(session: Http2Session): number {
  return streamsOpen.get(session) ?? 0;
}

function countStream(stream: ServerHttp2Stream): void {
  const { session } = stream;
  if (session === undefined) return;
  streamsOpen.set(session, openStreams(session) + 1);
  stream.once("close", () => streamsOpen.set(session, openStreams(session) - 1));
}

// An HTTP/2 request whose body has not all arrived within the request timeout gets 408 and its
// stream is reset, as node:http does for HTTP/1.1. A GET usually carries END_STREAM on its
// HEADERS frame and is never timed; one that does not, and is answered with an event stream, is
// not timed past its answer's start either: an event stream is a response, not a request. An
// answer already sent in full (a 413 before the body was read) gets the stream reset.
function boundRequest(stream: ServerHttp2Stream, timeoutMs: number, late: string): void {
  if (stream.endAfterHeaders) return;
  const timer = setTimeout(() => {
    if (stream.destroyed || stream.closed) return;
    if (stream.headersSent && !stream.writableEnded) return;
    if (!stream.headersSent) {
      stream.respond({ ":status": 408, "content-type": "text/plain; charset=utf-8" });
      stream.end(`${late}\n`);
    }
    setTimeout(() => {
      if (!stream.destroyed && !stream.closed) stream.close(NGHTTP2_CANCEL);
    }, 1000).unref();
  }, timeoutMs);
  timer.unref();
  stream.once("close", () => clearTimeout(timer));
  // The body has all arrived once the readable side ends, read or not.
  stream.once("end", () => clearTimeout(timer));
}
