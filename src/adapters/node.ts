/**
 * The node:http binding: a {@link Sink} over the request's socket (see `socket-sink.ts`) or, when
 * node:http cannot hand the socket over, over the `ServerResponse`; and the wiring of `drain`
 * and `close` to the subscriber. Works for anything built on node:http (Express, Koa…), and
 * hands the request/response pair of node:http2's compatibility API to `http2.ts`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { CrierError } from "../errors.ts";
import { lastEventIdOf } from "../head.ts";
import type { Hub, SubscribeOptions } from "../hub.ts";
import { hubArgument } from "../options.ts";
import type { Connection, Sink, Subscription } from "../subscriber.ts";
import { subscribeHttp2 } from "./http2.ts";
import { canTakeOver, destroyStream, END_GRACE_MS, SocketSink } from "./socket-sink.ts";
import { armDeadPeerDetection } from "./tcp-liveness.ts";
import { reportClose, reportDrainAndClose } from "./wiring.ts";

/** A request of node:http, or of node:http2's compatibility API (HTTP/2 or HTTP/1.1 fallback). */
export type NodeRequest = IncomingMessage | Http2ServerRequest;
/** The response paired with a {@link NodeRequest}. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

/** True for the response of an HTTP/2 stream (node:http2's compatibility API). */
export function isHttp2Response(res: NodeResponse): res is Http2ServerResponse {
  return "stream" in res;
}

// A response whose end never got out (the client stopped reading) is dropped; a finished one is
// left alone, its keep-alive connection may already carry the client's next request.
function destroyUnfinished(res: ServerResponse): void {
  if (!res.writableFinished) destroyStream(res);
}

class ResponseSink implements Sink {
  readonly kind: "node-response" | "node-fallback";
  readonly #res: ServerResponse;

  constructor(res: ServerResponse, fallback: boolean) {
    this.#res = res;
    this.kind = fallback ? "node-fallback" : "node-response";
  }

  start(headers: Readonly<Record<string, string>>): void {
    this.#res.writeHead(200, headers);
  }

  write(chunk: Buffer): boolean {
    return this.#res.write(chunk);
  }

  end(): void {
    this.#res.end();
    setTimeout(destroyUnfinished, END_GRACE_MS, this.#res).unref();
  }

  destroy(): void {
    this.#res.destroy();
  }
}

// The kernel ended the connection because nothing was acknowledged within TCP_USER_TIMEOUT:
// the peer vanished or stopped reading. Reported as `stalled`; `close` follows.
const TIMED_OUT = Symbol("crier.timedOut");
interface TimeoutCarrier {
  [TIMED_OUT]?: Connection;
}
function onSocketError(this: TimeoutCarrier, err: NodeJS.ErrnoException): void {
  if (err.code === "ETIMEDOUT") this[TIMED_OUT]?.gone("stalled");
}

/** The request's `Last-Event-ID` header, if any, decoded as UTF-8 (see `headerText`). */
export function lastEventIdHeader(req: NodeRequest): string | undefined {
  return lastEventIdOf(req.headers);
}

/**
 * Streams matching updates to a `node:http` (or Express, Koa…) response until either side
 * closes. Resumes after the request's `Last-Event-ID` header unless `options.lastEventId` is
 * given. With `detach`, the socket is taken over from node:http once the head is written (see
 * `socket-sink.ts`); where node:http cannot hand it over, the stream goes through the
 * `ServerResponse` instead (counted as `node-fallback` in `hub.stats.sinks`). An HTTP/2 pair
 * (node:http2's `Http2ServerRequest`/`Http2ServerResponse`) streams over its own HTTP/2 stream
 * (`node-http2`); `detach` does not apply there, the socket belongs to the session.
 */
export function subscribeNode(
  hub: Hub,
  req: NodeRequest,
  res: NodeResponse,
  options: SubscribeOptions,
): Subscription {
  if (typeof req?.headers !== "object" || typeof res?.writeHead !== "function") {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "subscribeNode needs the hub, a node:http or node:http2 request and its response",
    );
  }
  hubArgument(hub, "subscribeNode's first argument");
  if (typeof options !== "object" || options === null) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", "subscribeNode needs options with topics");
  }
  // The stream's head is the hub's to write: after another, it could only end the connection.
  if (res.headersSent) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "subscribeNode needs a response whose head has not been sent (res.headersSent is true)",
    );
  }
  const lastEventId = options.lastEventId ?? lastEventIdHeader(req);
  const resolved = lastEventId === options.lastEventId ? options : { ...options, lastEventId };
  if (isHttp2Response(res)) return subscribeHttp2(hub, res, resolved);
  return subscribeHttp1(hub, req as IncomingMessage, res, resolved);
}

function subscribeHttp1(
  hub: Hub,
  req: IncomingMessage,
  res: ServerResponse,
  options: SubscribeOptions,
): Subscription {
  req.socket.setNoDelay(true);
  armDeadPeerDetection(req.socket, hub.keepAliveMs);
  const detach = options.detach === true;
  const direct = detach && canTakeOver(req, res);
  const sink = direct ? new SocketSink(req, res) : new ResponseSink(res, detach);
  const subscriber = hub.connect(sink, options);
  (req.socket as TimeoutCarrier)[TIMED_OUT] = subscriber;
  req.socket.on("error", onSocketError);
  const emitter = direct ? req.socket : res;
  reportDrainAndClose(emitter, subscriber);
  if (!direct) {
    // A response queued behind another on a pipelined connection has no socket yet and never
    // emits `close` if the client goes away; its request does.
    reportClose(req, subscriber);
  }
  // Closed before it was subscribed (while the caller awaited a token check): its `close` has
  // been emitted already, and it would hold its place until its keep-alives stalled.
  if (req.socket.destroyed) subscriber.gone();
  return subscriber;
}
