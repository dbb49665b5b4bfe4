/**
 * The node:http binding: a {@link Sink} over the request's socket (see `socket-sink.ts`) or, when
 * node:http cannot hand the socket over, over the `ServerResponse`; and the wiring of `drain`
 * and `close` to the subscriber. Works for anything built on node:http (Express, Koa…).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Hub, SubscribeOptions, Subscription } from "../hub.ts";
import type { Sink, Subscriber } from "../subscriber.ts";
import { canTakeOver, SocketSink } from "./socket-sink.ts";

class ResponseSink implements Sink {
  readonly #res: ServerResponse;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  start(headers: Readonly<Record<string, string>>): void {
    this.#res.writeHead(200, headers);
  }

  write(chunk: Buffer): boolean {
    return this.#res.write(chunk);
  }

  end(): void {
    this.#res.end();
  }

  destroy(): void {
    this.#res.destroy();
  }
}

// The subscriber of an emitter, so its listeners are shared functions rather than two closures
// per connection.
const SUBSCRIBER = Symbol("crier.subscriber");
interface Carrier {
  [SUBSCRIBER]?: Subscriber;
}
function onDrain(this: Carrier): void {
  this[SUBSCRIBER]?.drained();
}
function onClose(this: Carrier): void {
  this[SUBSCRIBER]?.gone();
}

/** Subscribes a node:http request; `Last-Event-ID` is read from the request unless given. */
export function subscribeNode(
  hub: Hub,
  req: IncomingMessage,
  res: ServerResponse,
  options: SubscribeOptions,
): Subscription {
  let lastEventId = options.lastEventId;
  if (lastEventId === undefined) {
    const header = req.headers["last-event-id"];
    if (typeof header === "string" && header !== "") lastEventId = header;
  }
  req.socket.setNoDelay(true);
  const direct = options.detach === true && canTakeOver(req, res);
  const sink = direct ? new SocketSink(req, res) : new ResponseSink(res);
  const subscriber = hub.connect(
    sink,
    lastEventId === options.lastEventId ? options : { ...options, lastEventId },
  );
  const emitter = direct ? req.socket : res;
  (emitter as Carrier)[SUBSCRIBER] = subscriber;
  emitter.on("drain", onDrain);
  emitter.on("close", onClose);
  return subscriber;
}
