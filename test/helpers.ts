/** Test helpers: a real hub on a real socket, and real clients. */
import { once } from "node:events";
import { type IncomingHttpHeaders, request, type Server } from "node:http";
import { type AddressInfo, createServer } from "node:net";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { createHub, type Hub, type HubOptions } from "../src/hub.ts";
import {
  createHubServer,
  type HubServerOptions,
  MERCURE_PATH,
  shutdown,
} from "../src/mercure/index.ts";
import { mintToken } from "../src/mercure/tokens/mint.ts";

export const SECRET = "test-secret-of-enough-length-for-hs256!";

export interface TestHub {
  readonly hub: Hub;
  /** The HTTP server, to drop its connections. */
  readonly server: Server;
  /** The Mercure endpoint, e.g. http://127.0.0.1:1234/.well-known/mercure */
  readonly url: string;
  readonly port: number;
  /** A publisher token for every topic. */
  readonly publisherToken: string;
  close(): Promise<void>;
}

/** Starts a hub with a server on 127.0.0.1:0. */
export async function startHub(
  hubOptions: HubOptions = {},
  handler: Partial<HubServerOptions> = {},
): Promise<TestHub> {
  const hub = createHub(hubOptions);
  const server = createHubServer({
    hub,
    publisherKey: SECRET,
    subscriberKey: SECRET,
    anonymous: true,
    ...handler,
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    hub,
    server,
    port,
    url: `http://127.0.0.1:${port}${MERCURE_PATH}`,
    publisherToken: await mintToken(SECRET, { publish: ["*"] }),
    close: () => shutdown(server, hub, 1000),
  };
}

export interface PublishResult {
  readonly status: number;
  /** The body without surrounding whitespace (error reasons end in a newline). */
  readonly body: string;
  /** The body exactly as received. */
  readonly raw: string;
  readonly headers: Headers;
}

/** POSTs a form to the hub. `fields` values may repeat by passing an array. */
export async function publish(
  url: string,
  fields: Record<string, string | string[]>,
  token?: string,
  headers: Record<string, string> = {},
): Promise<PublishResult> {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) form.append(name, v);
  }
  const res = await fetch(url, {
    method: "POST",
    body: form,
    headers: token === undefined ? headers : { Authorization: `Bearer ${token}`, ...headers },
  });
  const raw = await res.text();
  return { status: res.status, body: raw.trim(), raw, headers: res.headers };
}

/** A streaming subscription read with eventsource-parser; keeps the raw bytes too. */
export interface StreamClient {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly events: EventSourceMessage[];
  readonly comments: string[];
  /** Everything received, decoded. */
  raw(): string;
  /** Resolves when `n` events have arrived (rejects after `ms`). */
  waitForEvents(n: number, ms?: number): Promise<EventSourceMessage[]>;
  /** Resolves when the first comment (the one that flushes the headers) has arrived. */
  waitForComment(ms?: number): Promise<void>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens `GET url` with node:http and parses the event stream. */
export async function openStream(
  url: string,
  headers: Record<string, string> = {},
): Promise<StreamClient> {
  const req = request(url, { headers: { Accept: "text/event-stream", ...headers }, agent: false });
  req.end();
  const [res] = (await once(req, "response")) as [import("node:http").IncomingMessage];
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  let raw = "";
  let notify = () => {};
  const parser = createParser({
    onEvent: (event) => {
      events.push(event);
      notify();
    },
    onComment: (comment) => {
      comments.push(comment);
      notify();
    },
  });
  res.setEncoding("utf8");
  res.on("data", (chunk: string) => {
    raw += chunk;
    parser.feed(chunk);
  });
  const ended = new Promise<void>((resolve) => {
    res.once("end", resolve);
    res.once("close", resolve);
    res.once("error", () => resolve());
  });
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    events,
    comments,
    raw: () => raw,
    ended,
    waitForEvents(n, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out with ${events.length}/${n} events`)),
          ms,
        );
        const check = () => {
          if (events.length >= n) {
            clearTimeout(timer);
            notify = () => {};
            resolve(events.slice(0, n));
          }
        };
        notify = check;
        check();
        void ended.then(() => {
          if (events.length < n) {
            clearTimeout(timer);
            reject(new Error(`stream ended with ${events.length}/${n} events`));
          }
        });
      });
    },
    async waitForComment(ms = 5000) {
      const end = Date.now() + ms;
      while (comments.length === 0) {
        if (Date.now() > end) throw new Error("no comment arrived");
        await sleep(5);
      }
    },
    close: () => req.destroy(),
  };
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Resolves once `check` holds, checking every 10 ms; rejects naming `what` when it still does
 * not after `ms`, so a regression fails the test instead of hanging it.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A TCP port free on 127.0.0.1 at the time of asking (for a server that must reuse it). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
