/**
 * The {@link Exchange} of node:http (and node:http2's compatibility API): the request and
 * response pair of a request listener, including Express's, mounted under a path or not.
 */
import {
  isHttp2Response,
  type NodeRequest,
  type NodeResponse,
  subscribeNode,
} from "../../adapters/node.ts";
import type { Hub, SubscribeOptions } from "../../hub.ts";
import type { Subscription } from "../../subscriber.ts";
import { readBody } from "./body.ts";
import type { Exchange, ExchangeHeaders, ReplyHeaders } from "./exchange.ts";
import { isAbsoluteForm } from "./target.ts";

/** A request of node:http answered through its `ServerResponse`. */
export class NodeExchange implements Exchange {
  readonly req: NodeRequest;
  readonly res: NodeResponse;
  // Read on arrival: node:http2's compatibility socket answers `undefined` once the stream has
  // closed, which a check made after the token's verification would count as another address.
  readonly remoteAddress: string | undefined;
  // The request's headers as the hub reads them (see `headers`), made on first use.
  #headers: ExchangeHeaders | undefined;

  constructor(req: NodeRequest, res: NodeResponse) {
    this.req = req;
    this.res = res;
    this.remoteAddress = req.socket.remoteAddress;
  }

  get method(): string {
    return this.req.method ?? "GET";
  }

  // Express strips the mount path from `url` (`app.use("/.well-known/mercure", handler)` sees
  // `/`) and keeps the target as received in `originalUrl`: the routes match the full path.
  get target(): string {
    return (this.req as { originalUrl?: unknown }).originalUrl === undefined
      ? (this.req.url ?? "/")
      : String((this.req as { originalUrl?: unknown }).originalUrl);
  }

  // [RFC 9112 §3.2.2] When an origin server receives a request with an absolute-form of
  // request-target, the origin server MUST ignore the received Host header field (if any) and
  // instead use the host information of the request-target.
  get headers(): ExchangeHeaders {
    if (this.#headers === undefined)
      this.#headers = addressedHeaders(this.req.headers, this.target);
    return this.#headers;
  }

  get secure(): boolean {
    return "encrypted" in this.req.socket;
  }

  get hostLines(): number {
    // Counted in the raw lines, which node:http keeps anyway (`headersDistinct` would build an
    // object of every header on each request). HTTP/2's authority is a pseudo-header: none.
    const raw = this.req.rawHeaders;
    let lines = 0;
    for (let i = 0; i < raw.length; i += 2)
      if ((raw[i] as string).toLowerCase() === "host") lines++;
    return lines;
  }

  get gone(): boolean {
    const { res } = this;
    // An `Http2ServerResponse` has no `destroyed`: its stream says.
    return isHttp2Response(res) ? res.stream.destroyed || res.stream.closed : res.destroyed;
  }

  body(limit: number): Promise<Buffer> {
    return readBody(this.req, limit);
  }

  reply(status: number, headers: ReplyHeaders, body?: string): void {
    const { res } = this;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // An oversized body is refused before it is read; close so the rest is not parsed as a
    // request (HTTP/1.1). An HTTP/2 stream ends alone, the rest of its body is discarded.
    if (status === 413 && !isHttp2Response(res)) res.shouldKeepAlive = false;
    res.writeHead(status, headers);
    if (body === undefined) res.end();
    else res.end(body);
  }

  lastOnConnection(): void {
    if (!isHttp2Response(this.res)) this.res.shouldKeepAlive = false;
  }

  stream(hub: Hub, options: SubscribeOptions): Subscription {
    return subscribeNode(hub, this.req, this.res, options);
  }
}

// The request's headers, with `host` the authority of an absolute-form target (one that does not
// parse is left as it is: the router refuses the target).
function addressedHeaders(headers: ExchangeHeaders, target: string): ExchangeHeaders {
  if (!isAbsoluteForm(target)) return headers;
  let host: string;
  try {
    host = new URL(target).host;
  } catch {
    return headers;
  }
  return { ...headers, host };
}
