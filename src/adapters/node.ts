/**
 * The node:http binding: a {@link Sink} over a `ServerResponse`, and the wiring of its `drain`
 * and `close` events to the subscriber. Works for anything built on node:http (Express, Koa…).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Hub, SubscribeOptions, Subscription } from "../hub.ts";
import type { Sink } from "../subscriber.ts";

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

/** Subscribes a node:http request; `Last-Event-ID` is read from the request unless given. */
export function subscribeNode(
  hub: Hub,
  req: IncomingMessage,
  res: ServerResponse,
  options: SubscribeOptions,
): Subscription {
  const header = req.headers["last-event-id"];
  const lastEventId =
    options.lastEventId ?? (typeof header === "string" && header !== "" ? header : undefined);
  req.socket.setNoDelay(true);
  const subscriber = hub.connect(new ResponseSink(res), { ...options, lastEventId });
  res.on("drain", () => subscriber.drained());
  res.on("close", () => subscriber.gone());
  return subscriber;
}
