/**
 * The hub over HTTP/2 (TLS, node:http2's client on a real socket): every promise of an event
 * stream over HTTP/1.1 holds per HTTP/2 stream, and several streams share one session without
 * one that stops reading holding up the others.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  createSecureServer,
  type IncomingHttpHeaders,
} from "node:http2";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { after, afterEach, before, describe, test } from "node:test";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { subscribeNode } from "../src/adapters/node.ts";
import { createHub } from "../src/hub.ts";
import { createSecureHubServer } from "../src/mercure/index.ts";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { SECRET, until } from "./helpers.ts";
import { type Certificate, type SecureTestHub, selfSigned, startSecureHub } from "./tls.ts";

const { NGHTTP2_CANCEL } = constants;

async function publishOnHub(t: SecureTestHub, topic: string, data: string): Promise<void> {
  await t.hub.publish({ topics: topic, data });
}

const FORBIDDEN = ["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"];

/** One event stream over an HTTP/2 session. */
interface H2Stream {
  readonly stream: ClientHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly events: EventSourceMessage[];
  readonly comments: string[];
  raw(): string;
  /** Resolves when the stream closes, with its RST_STREAM code (0: ended cleanly). */
  readonly closed: Promise<number>;
}

async function subscribe(
  session: ClientHttp2Session,
  query: string,
  headers: Record<string, string> = {},
): Promise<H2Stream> {
  const stream = session.request({ ":path": `/.well-known/mercure?${query}`, ...headers });
  const [response] = (await once(stream, "response")) as [IncomingHttpHeaders];
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  let raw = "";
  const parser = createParser({
    onEvent: (event) => events.push(event),
    onComment: (comment) => comments.push(comment),
  });
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    raw += chunk;
    parser.feed(chunk);
  });
  const closed = new Promise<number>((resolve) =>
    stream.once("close", () => resolve(stream.rstCode ?? 0)),
  );
  stream.on("error", () => {});
  return { stream, headers: response, events, comments, raw: () => raw, closed };
}

/** POSTs a publish form on an HTTP/2 session; resolves with the status and the body. */
async function publishH2(
  session: ClientHttp2Session,
  token: string,
  fields: Record<string, string>,
): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  const stream = session.request({
    ":method": "POST",
    ":path": "/.well-known/mercure",
    authorization: `Bearer ${token}`,
    "content-type": "application/x-www-form-urlencoded",
  });
  stream.end(new URLSearchParams(fields).toString());
  const [headers] = (await once(stream, "response")) as [IncomingHttpHeaders];
  let body = "";
  stream.setEncoding("utf8");
  for await (const chunk of stream) body += chunk;
  return { status: Number(headers[":status"]), body: body.trim(), headers };
}

describe("the hub over HTTP/2", () => {
  let certificate: Certificate;
  let t: SecureTestHub | undefined;
  const sessions: ClientHttp2Session[] = [];

  before(() => {
    certificate = selfSigned();
  });
  after(() => certificate.remove());
  afterEach(async () => {
    for (const session of sessions.splice(0)) session.destroy();
    await t?.close();
    t = undefined;
  });

  function open(origin: string, settings: Record<string, number> = {}): ClientHttp2Session {
    const session = connect(origin, { rejectUnauthorized: false, settings });
    session.on("error", () => {});
    sessions.push(session);
    return session;
  }

  test("refuses a key that is not the certificate's, of the same type or of another", () => {
    const other = selfSigned();
    try {
      const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
        type: "pkcs8",
        format: "pem",
      });
      for (const key of [other.key, rsa]) {
        assert.throws(
          () => createSecureHubServer({ hub: createHub(), cert: certificate.cert, key }),
          {
            code: "CRIER_ERR_INVALID_OPTION",
            message: "key is not the private key of cert's certificate",
          },
        );
      }
      assert.throws(
        () =>
          createSecureHubServer({ hub: createHub(), cert: certificate.key, key: certificate.cert }),
        {
          code: "CRIER_ERR_INVALID_OPTION",
          message: /^cert and key are not a PEM certificate and its private key/,
        },
      );
    } finally {
      other.remove();
    }
  });

  test("advertises its bound on concurrent streams, and a client holds no more streams than that", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 }, { maxConcurrentStreams: 2 });
    const session = open(t.origin);
    await once(session, "remoteSettings");
    assert.equal(session.remoteSettings.maxConcurrentStreams, 2);
    const streams = await Promise.all([
      subscribe(session, "topic=a"),
      subscribe(session, "topic=b"),
    ]);
    // A third stream is held back while two are open: queued by the client (and answered once
    // one closes) or refused by the server (RST_STREAM), depending on the client's Node version.
    // Either way the hub never holds more than two streams of this connection.
    let most = 0;
    t.hub.on("connect", () => {
      most = Math.max(most, t?.hub.stats.subscribers ?? 0);
    });
    const third = session.request({ ":path": "/.well-known/mercure?topic=c" });
    let settled = false;
    third.once("response", () => {
      settled = true;
    });
    third.once("close", () => {
      settled = true;
    });
    third.on("error", () => {});
    await until(() => t?.hub.stats.subscribers === 2, "the two streams");
    streams[0]?.stream.close();
    await until(() => settled, "the third stream to be answered or refused");
    assert.ok(most <= 2, `the hub held ${most} streams of one connection`);
    third.close();
  });

  test("flushes the head and a comment at once, without HTTP/1-only headers", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 });
    const s = await subscribe(open(t.origin), "topic=a");
    assert.equal(s.headers[":status"], 200);
    assert.equal(s.headers["content-type"], "text/event-stream");
    for (const name of FORBIDDEN) assert.equal(s.headers[name], undefined, name);
    await until(() => s.raw() === ":\n", "the opening comment");
    assert.deepEqual(t.hub.stats.sinks, { "node-http2": 1 });
  });

  test("sends keep-alive comments on an idle stream", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 20 });
    const s = await subscribe(open(t.origin), "topic=a");
    await until(() => s.comments.length >= 3, "keep-alive comments");
  });

  test("publishes over HTTP/2 to a stream on the same session", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 });
    const session = open(t.origin);
    const s = await subscribe(session, "topic=a");
    const answer = await publishH2(session, t.publisherToken, { topic: "a", data: "over h2" });
    assert.equal(answer.status, 200);
    for (const name of FORBIDDEN) assert.equal(answer.headers[name], undefined, name);
    await until(() => s.events.length === 1, "the event");
    assert.deepEqual(s.events[0], { id: answer.body, data: "over h2", event: undefined });
  });

  test("knows its own https origin from :authority, for a publish authenticated by cookie", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 });
    const session = open(t.origin);
    const send = async (origin: string) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/.well-known/mercure",
        cookie: `mercureAuthorization=${(t as SecureTestHub).publisherToken}`,
        origin,
        "content-type": "application/x-www-form-urlencoded",
      });
      stream.end("topic=a&data=by+cookie");
      const [headers] = (await once(stream, "response")) as [IncomingHttpHeaders];
      stream.resume();
      return headers[":status"];
    };
    assert.equal(await send(t.origin), 200);
    assert.equal(await send(t.origin.replace("https:", "http:")), 403);
  });

  test("publishes over HTTP/1.1 on the same TLS port", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 });
    const s = await subscribe(open(t.origin), "topic=a");
    const req = httpsRequest(t.url, {
      method: "POST",
      rejectUnauthorized: false,
      agent: false,
      headers: {
        authorization: `Bearer ${t.publisherToken}`,
        "content-type": "application/x-www-form-urlencoded",
      },
    });
    req.end("topic=a&data=over+h1");
    const [res] = (await once(req, "response")) as [import("node:http").IncomingMessage];
    assert.equal(res.httpVersion, "1.1");
    assert.equal(res.statusCode, 200);
    res.resume();
    await until(() => s.events.length === 1, "the event");
    assert.equal(s.events[0]?.data, "over h1");
  });

  test("streams over HTTP/1.1 on the same TLS port to a client without HTTP/2", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 });
    const req = httpsRequest(`${t.url}?topic=a`, { rejectUnauthorized: false, agent: false });
    req.end();
    const [res] = (await once(req, "response")) as [import("node:http").IncomingMessage];
    try {
      assert.equal(res.httpVersion, "1.1");
      assert.equal(res.headers["content-type"], "text/event-stream");
      let raw = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        raw += chunk;
      });
      await until(() => raw === ":\n", "the opening comment");
      const { id } = await t.hub.publish({ topics: "a", data: "tls h1" });
      await until(() => raw === `:\nid: ${id}\ndata: tls h1\n\n`, "the event");
      // The socket take-over works over TLS too.
      assert.deepEqual(t.hub.stats.sinks, { "node-socket": 1 });
    } finally {
      req.destroy();
    }
  });

  test("resumes after Last-Event-ID, saying where it resumed from", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 });
    const ids: string[] = [];
    for (const data of ["1", "2", "3"]) ids.push((await t.hub.publish({ topics: "a", data })).id);
    const s = await subscribe(open(t.origin), "topic=a", { "last-event-id": ids[0] as string });
    assert.equal(s.headers["last-event-id"], ids[0]);
    await until(() => s.events.length === 2, "the replay");
    assert.deepEqual(
      s.events.map((e) => [e.id, e.data]),
      [
        [ids[1], "2"],
        [ids[2], "3"],
      ],
    );
  });

  test("evicts a stream that stops reading at its queue bound while another stream on the same session receives everything", async () => {
    t = await startSecureHub(certificate, {
      keepAliveMs: 0,
      queue: { maxBytes: 8 * 1024 },
    });
    const reasons: string[] = [];
    t.hub.on("disconnect", (_s, reason) => reasons.push(reason));
    // A small stream window: the stopped reader's flow control fills after 1 KiB.
    const session = open(t.origin, { initialWindowSize: 1024 });
    const slow = await subscribe(session, "topic=a");
    const fast = await subscribe(session, "topic=a");
    slow.stream.pause();
    const data = "x".repeat(1000);
    const count = 150;
    // One event in flight at a time: the reading stream, whose window is small too, is never
    // the one that backs up.
    for (let i = 0; i < count; i++) {
      await t.hub.publish({ topics: "a", data: `${i} ${data}` });
      await until(() => fast.events.length === i + 1, `event ${i} on the reading stream`);
    }
    assert.equal(await slow.closed, 8, "the stopped stream is reset with CANCEL");
    assert.deepEqual(
      fast.events.map((e) => e.data.split(" ")[0]),
      Array.from({ length: count }, (_, i) => String(i)),
    );
    assert.deepEqual(reasons, ["overflow"]);
    assert.equal(t.hub.stats.evicted, 1);
    assert.equal(session.destroyed, false);
  });

  test("ends a stream when its token expires", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 }, { anonymous: false });
    // `exp` is whole seconds: with one second to live, a token minted late in a second can
    // expire before the request reaches the hub. Two leave at least a second.
    const token = await mintToken(SECRET, { subscribe: ["*"], ttlSeconds: 2 });
    const s = await subscribe(open(t.origin), "topic=a", { authorization: `Bearer ${token}` });
    assert.equal(s.headers[":status"], 200);
    assert.equal(await s.closed, 0, "ended, not reset");
  });

  test("on shutdown, tells each stream to come back and ends it", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0, closeRetryMs: 1234 });
    const session = open(t.origin);
    const a = await subscribe(session, "topic=a");
    const b = await subscribe(session, "topic=b");
    await t.close();
    t = undefined;
    assert.equal(await a.closed, 0);
    assert.equal(await b.closed, 0);
    assert.match(a.raw(), /retry: 1234\n\n$/);
    assert.match(b.raw(), /retry: 1234\n\n$/);
  });

  test("does not register a stream reset while its token is checked, nor count it under another address", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 }, { maxSubscribersPerIp: 2 });
    const hub = t.hub;
    const token = await mintToken(SECRET, { subscribe: ["*"] });
    const session = open(t.origin);
    // HEADERS and RST_STREAM in one write: the stream is gone before the token is verified.
    let verified = 0;
    for (let i = 0; i < 5; i++) {
      const stream = session.request({
        ":path": "/.well-known/mercure?topic=z",
        authorization: `Bearer ${token}`,
      });
      stream.on("error", () => {});
      stream.close(NGHTTP2_CANCEL);
      stream.once("close", () => verified++);
    }
    await until(() => verified === 5, "the five resets");
    // What is still registered then is there for good: a publish round trip later, none.
    const answer = await publishH2(session, t.publisherToken, { topic: "z", data: "x" });
    assert.equal(answer.status, 200);
    assert.equal(hub.stats.subscribers, 0);
    // And the address's own two subscriptions are still its to open.
    const a = await subscribe(session, "topic=z", { authorization: `Bearer ${token}` });
    const b = await subscribe(session, "topic=z", { authorization: `Bearer ${token}` });
    assert.equal(a.headers[":status"], 200);
    assert.equal(b.headers[":status"], 200);
    assert.equal(hub.stats.subscribers, 2);
  });

  test("does not reset an event stream whose GET did not end its request, at the request timeout", async () => {
    t = await startSecureHub(
      certificate,
      { keepAliveMs: 100 },
      { requestTimeoutMs: 200, headersTimeoutMs: 100 },
    );
    const session = open(t.origin);
    const stream = session.request(
      { ":path": "/.well-known/mercure?topic=a" },
      { endStream: false },
    );
    stream.on("error", () => {});
    let raw = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      raw += chunk;
    });
    const [headers] = (await once(stream, "response")) as [IncomingHttpHeaders];
    assert.equal(headers[":status"], 200);
    // Before: reset a second after the request timeout, and the client reconnected in a loop.
    await until(() => (raw.match(/^:/gm) ?? []).length >= 20, "keep-alives past 2 s", 10_000);
    assert.equal(stream.closed, false);
    await publishOnHub(t, "a", "still here");
    await until(() => raw.includes("data: still here"), "an update on it");
  });

  test("takes :authority over Host, and refuses a Host that differs from it", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 });
    const session = open(t.origin);
    const authority = new URL(t.origin).host;
    // A relative URL pattern resolves against the request's origin: :authority's.
    // (node's client sends a lone `host` as :authority: both are given.)
    const same = await subscribe(session, "match_urlpattern=/books/*", {
      ":authority": authority,
      host: authority.toUpperCase(),
    });
    assert.equal(same.headers[":status"], 200);
    await t.hub.publish({ topics: `${t.origin}/books/1`, data: "by authority" });
    await until(() => same.events.length === 1, "the event");
    const other = session.request({
      ":path": "/.well-known/mercure?topic=a",
      ":authority": authority,
      host: "b.example",
    });
    other.on("error", () => {});
    // Read the answer as it comes, as any client does: a body left unread past the stream's
    // close is gone.
    let body = "";
    other.setEncoding("utf8");
    other.on("data", (chunk: string) => {
      body += chunk;
    });
    const ended = once(other, "end");
    const [headers] = (await once(other, "response")) as [IncomingHttpHeaders];
    assert.equal(headers[":status"], 400);
    await ended;
    assert.equal(body, "the Host header differs from :authority\n");
    // The same entity written another way is no difference: a default port, a final dot, case.
    const alike = await subscribe(session, "topic=a", {
      ":authority": "example.com:443",
      host: "Example.COM.",
    });
    assert.equal(alike.headers[":status"], 200);
    const alikeOnPort = await subscribe(session, "topic=a", {
      ":authority": "example.com:8443",
      host: "example.com.:8443",
    });
    assert.equal(alikeOnPort.headers[":status"], 200);
    // Over TLS :80 is a port of its own, not the default one.
    const otherPort = session.request({
      ":path": "/.well-known/mercure?topic=a",
      ":authority": "example.com:80",
      host: "example.com:443",
    });
    otherPort.on("error", () => {});
    otherPort.resume();
    const [otherPortHeaders] = (await once(otherPort, "response")) as [IncomingHttpHeaders];
    assert.equal(otherPortHeaders[":status"], 400);
  });

  test("takes request headers up to 16 KB, as over HTTP/1.1, and refuses the stream past them", async () => {
    t = await startSecureHub(certificate, { keepAliveMs: 0 });
    const session = open(t.origin);
    const small = await subscribe(session, "topic=a", { "x-pad": "x".repeat(8 * 1024) });
    assert.equal(small.headers[":status"], 200);
    const big = session.request({
      ":path": "/.well-known/mercure?topic=a",
      "x-pad": "x".repeat(20 * 1024),
    });
    big.on("error", () => {});
    big.on("response", () => assert.fail("answered a 20 KB header list"));
    await new Promise((resolve) => big.once("close", resolve));
    assert.notEqual(big.rstCode, 0);
    assert.equal(t.hub.stats.subscribers, 1);
  });

  test("subscribeNode after an await does not register a stream reset meanwhile", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    let handled = 0;
    const server = createSecureServer(
      { cert: certificate.cert, key: certificate.key },
      async (req, res) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        subscribeNode(hub, req, res, { topics: ["chat"] });
        handled++;
      },
    );
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const { port } = server.address() as AddressInfo;
      const session = open(`https://127.0.0.1:${port}`);
      const stream = session.request({ ":path": "/" });
      stream.on("error", () => {});
      stream.close(NGHTTP2_CANCEL);
      await until(() => handled === 1, "the handler's subscribeNode");
      assert.equal(hub.stats.subscribers, 0);
      assert.deepEqual(hub.stats.disconnects, { client: 1 });
    } finally {
      await hub.close();
      for (const session of sessions.splice(0)) session.destroy();
      server.close();
    }
  });

  test("subscribeNode takes node:http2's compatibility request and response", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    const server = createSecureServer(
      { cert: certificate.cert, key: certificate.key },
      (req, res) => {
        res.setHeader("Connection", "keep-alive");
        subscribeNode(hub, req, res, { topics: ["chat"] });
      },
    );
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const { port } = server.address() as AddressInfo;
      const s = await subscribe(open(`https://127.0.0.1:${port}`), "");
      for (const name of FORBIDDEN) assert.equal(s.headers[name], undefined, name);
      await hub.publish({ topics: "chat", data: "hi" });
      await until(() => s.events.length === 1, "the event");
      assert.deepEqual(hub.stats.sinks, { "node-http2": 1 });
    } finally {
      await hub.close();
      for (const session of sessions.splice(0)) session.destroy();
      server.close();
    }
  });
});
