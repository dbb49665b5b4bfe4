/**
 * The node:http binding: a {@link Sink} over the request's socket (see `socket-sink.ts`) or, when
 * node:http cannot hand the socket over, over the `ServerResponse`; and the wiring of `drain`
 * and `close` to the subscriber. Works for anything built on node:http (Express, Koa…).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { CrierError } from "../errors.ts";
import { headerText } from "../head.ts";
import type { Hub, SubscribeOptions } from "../hub.ts";
import type { Connection, Sink, Subscription } from "../subscriber.ts";
import { canTakeOver, destroyStream, END_GRACE_MS, SocketSink } from "./socket-sink.ts";
import { armDeadPeerDetection } from "./tcp-liveness.ts";

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

// The subscriber of an emitter, so its listeners are shared functions rather than two closures
// per connection.
const SUBSCRIBER = Symbol("crier.subscriber");
interface Carrier {
  [SUBSCRIBER]?: Connection;
}
function onDrain(this: Carrier): void {
  this[SUBSCRIBER]?.drained();
}
function onClose(this: Carrier): void {
  this[SUBSCRIBER]?.gone();
}

/** The request's `Last-Event-ID` header, if any, decoded as UTF-8 (see `headerText`). */
export function lastEventIdHeader(req: IncomingMessage): string | undefined {
  const header = req.headers["last-event-id"];
  if (typeof header !== "string" || header === "") return undefined;
  return headerText(header);
}

/**
 * Streams matching updates to a `node:http` (or Express, Koa…) response until either side
 * closes. Resumes after the request's `Last-Event-ID` header unless `options.lastEventId` is
 * given. With `detach`, the socket is taken over from node:http once the head is written (see
 * `socket-sink.ts`); where node:http cannot hand it over, the stream goes through the
 * `ServerResponse` instead (counted as `node-fallback` in `hub.stats.sinks`).
 */
export function subscribeNode(
  hub: Hub,
  req: IncomingMessage,
  res: ServerResponse,
  options: SubscribeOptions,
): Subscription {
  if (typeof req?.headers !== "object" || typeof res?.writeHead !== "function") {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "subscribeNode needs the hub, a node:http request and its response",
    );
  }
  const lastEventId = options?.lastEventId ?? lastEventIdHeader(req);
  req.socket.setNoDelay(true);
  armDeadPeerDetection(req.socket, hub.keepAliveMs);
  const detach = options.detach === true;
  const direct = detach && canTakeOver(req, res);
  const sink = direct ? new SocketSink(req, res) : new ResponseSink(res, detach);
  const subscriber = hub.connect(
    sink,
    lastEventId === options.lastEventId ? options : { ...options, lastEventId },
  );
  const emitter = direct ? req.socket : res;
  (emitter as Carrier)[SUBSCRIBER] = subscriber;
  emitter.on("drain", onDrain);
  emitter.on("close", onClose);
  if (!direct) {
    // A response queued behind another on a pipelined connection has no socket yet and never
    // emits `close` if the client goes away; its request does.
    (req as Carrier)[SUBSCRIBER] = subscriber;
    req.on("close", onClose);
  }
  return subscriber;
}
