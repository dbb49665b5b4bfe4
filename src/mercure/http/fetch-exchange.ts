/**
 * The {@link Exchange} of a Fetch `Request`: the answer is a `Response`, handed over through
 * {@link FetchExchange.response} once a route has made it (an event stream: once its head is
 * known, which with Redis follows the history read).
 */
import { streamResponse } from "../../adapters/fetch.ts";
import type { Hub, SubscribeOptions } from "../../hub.ts";
import type { Subscription } from "../../subscriber.ts";
import { readRequestBody } from "./body.ts";
import type { Exchange, ExchangeHeaders, ReplyHeaders } from "./exchange.ts";

/** A Fetch `Request` and the `Response` a route answers it with. */
export class FetchExchange implements Exchange {
  readonly method: string;
  readonly target: string;
  readonly headers: ExchangeHeaders;
  readonly secure: boolean;
  readonly remoteAddress: string | undefined;
  /** The answer, once a route has given it. */
  readonly response: Promise<Response>;
  readonly #request: Request;
  #resolve!: (response: Response) => void;
  #answered = false;

  constructor(request: Request, remoteAddress: string | undefined) {
    this.#request = request;
    this.remoteAddress = remoteAddress;
    this.method = request.method;
    // A Request's URL is absolute: its authority is the Host the client addressed (runtimes build
    // it from the Host header), its scheme says whether TLS carried it. Bun hands over a relative
    // one when the Host is missing or no authority: the Host header is then checked as sent.
    // Throws on a URL that does not parse (Bun and Deno pass `http://h:99999/` on).
    const relative = request.url.startsWith("/");
    const url = new URL(request.url, relative ? "http://relative.invalid" : undefined);
    this.target = `${url.pathname}${url.search}`;
    this.secure = url.protocol === "https:";
    const headers: Record<string, string> = {};
    for (const [name, value] of request.headers) headers[name] = value;
    if (!relative) headers.host = url.host;
    this.headers = headers;
    this.response = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  get gone(): boolean {
    return this.#request.signal.aborted;
  }

  body(limit: number): Promise<Buffer> {
    return readRequestBody(this.#request, limit);
  }

  reply(status: number, headers: ReplyHeaders, body?: string): void {
    if (this.#answered) return;
    this.#answered = true;
    // The runtime frames the body itself: a Content-Length of ours could only disagree with it.
    // Except for HEAD, which has no body: there it says what GET's would be (RFC 9110 §8.6),
    // where a runtime would say 0.
    const { "Content-Length": length, ...rest } = headers;
    const head = this.method === "HEAD";
    const content = body === undefined || body === "" || head ? null : body;
    const kept = head && length !== undefined ? { ...rest, "Content-Length": length } : rest;
    this.#resolve(new Response(content, { status, headers: kept }));
  }

  lastOnConnection(): void {
    // The runtime owns its connections (and treats `Connection` as its own header).
  }

  stream(hub: Hub, options: SubscribeOptions): Subscription {
    // `detach` is node:http's: the stream here is the Response's own body.
    const { detach: _, ...rest } = options;
    const { subscription, response } = streamResponse(hub, this.#request, rest);
    this.#answered = true;
    void response.then(this.#resolve);
    return subscription;
  }
}
