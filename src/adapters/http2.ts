/**
 * The node:http2 binding: a {@link Sink} over one HTTP/2 stream, reached through node's
 * compatibility API (`Http2ServerRequest` / `Http2ServerResponse`), so one request listener
 * serves HTTP/2 and, with `allowHTTP1`, HTTP/1.1 on the same port.
 *
 *   session (one TLS connection) ──┬── stream 1 ──▶ Http2Sink ──▶ subscriber
 *                                  ├── stream 3 ──▶ Http2Sink ──▶ subscriber
 *                                  └── stream 5 …  (each with its own flow-control window)
 *
 * Invariant: backpressure is per stream. `write()` returns false once the stream's own buffer is
 * full, which happens when its peer stops granting window (it stopped reading); the subscriber
 * then waits for that stream's `drain`, and at its queue bound only that stream is reset
 * (RST_STREAM), never the session the other streams share. There is no socket take-over here:
 * the socket belongs to the session.
 */
import type { Http2ServerResponse, Http2Session, ServerHttp2Stream } from "node:http2";
import type { Hub, SubscribeOptions } from "../hub.ts";
import type { Sink, Subscription } from "../subscriber.ts";
import { END_GRACE_MS } from "./socket-sink.ts";
import { armDeadPeerDetection } from "./tcp-liveness.ts";
import { reportDrainAndClose } from "./wiring.ts";

// [RFC 9113 §7] CANCEL (0x8): the stream is no longer needed. Written out so that importing the
// core does not load node:http2.
const NGHTTP2_CANCEL = 0x8;

// [RFC 9113 §8.2.2] An endpoint MUST NOT generate an HTTP/2 message containing
// connection-specific header fields. […] Connection, Proxy-Connection, Keep-Alive,
// Transfer-Encoding, Upgrade.
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
]);

export class Http2Sink implements Sink {
  readonly kind = "node-http2";
  readonly #res: Http2ServerResponse;
  readonly #stream: ServerHttp2Stream;

  constructor(res: Http2ServerResponse) {
    this.#res = res;
    this.#stream = res.stream;
  }

  start(headers: Readonly<Record<string, string>>): void {
    const res = this.#res;
    // Headers set before (`res.setHeader`, e.g. by a framework) stay, minus the forbidden ones.
    for (const name of res.getHeaderNames()) {
      if (CONNECTION_SPECIFIC.has(name)) res.removeHeader(name);
    }
    const head: Record<string, string> = {};
    for (const name in headers) {
      if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) head[name] = headers[name] as string;
    }
    res.writeHead(200, head);
  }

  write(chunk: Buffer): boolean {
    return this.#res.write(chunk);
  }

  end(): void {
    this.#res.end();
    // A stream whose peer stopped reading never finishes its end: reset after a bound.
    setTimeout(cancel, END_GRACE_MS, this.#stream).unref();
  }

  destroy(): void {
    cancel(this.#stream);
  }
}

// Resets the stream alone (RST_STREAM CANCEL, buffered data discarded); the session goes on.
function cancel(stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.closed) stream.close(NGHTTP2_CANCEL);
}

// The subscriber of a response, so its listeners are shared functions rather than two closures
// per stream.
// Sessions whose socket is already armed: once per connection, not once per stream.
const armed = new WeakSet<Http2Session>();

/**
 * Streams matching updates to one HTTP/2 stream until either side closes. Called by
 * `subscribeNode` for an `Http2ServerResponse`; `options.lastEventId` is already resolved.
 */
export function subscribeHttp2(
  hub: Hub,
  res: Http2ServerResponse,
  options: SubscribeOptions,
): Subscription {
  const session = res.stream.session;
  if (session !== undefined && !armed.has(session)) {
    armed.add(session);
    // The compat socket reaches the session's own socket for these calls.
    res.socket.setNoDelay(true);
    armDeadPeerDetection(res.socket, hub.keepAliveMs);
  }
  const subscriber = hub.connect(new Http2Sink(res), options);
  reportDrainAndClose(res, subscriber);
  // Reset before it was subscribed (while the caller awaited a token check): its `close` has
  // been emitted already, and it would hold its place until its keep-alives stalled.
  if (res.stream.destroyed || res.stream.closed) subscriber.gone();
  return subscriber;
}
