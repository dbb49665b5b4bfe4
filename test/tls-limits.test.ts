/**
 * The TLS server's request bounds: the same headers, request and idle timeouts as the plain
 * server, for HTTP/1.1 on the TLS port, for each HTTP/2 request, and for the handshake itself.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import {
  type ClientHttp2Session,
  connect as connectH2,
  type IncomingHttpHeaders,
} from "node:http2";
import { connect as connectTcp, type Socket } from "node:net";
import { after, afterEach, before, describe, test } from "node:test";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { until } from "./helpers.ts";
import { type Certificate, type SecureTestHub, selfSigned, startSecureHub } from "./tls.ts";

const LATE =
  "the request did not arrive in time (headers within 500 ms, all of it within 1000 ms; 0: no limit)\n";

describe("the TLS server's request bounds", () => {
  let certificate: Certificate;
  let t: SecureTestHub | undefined;
  const closers: (() => void)[] = [];

  before(() => {
    certificate = selfSigned();
  });
  after(() => certificate.remove());
  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await t?.close();
    t = undefined;
  });

  async function start(idleTimeoutMs = 65_000): Promise<SecureTestHub> {
    t = await startSecureHub(
      certificate,
      { keepAliveMs: 200 },
      { headersTimeoutMs: 500, requestTimeoutMs: 1000, idleTimeoutMs },
    );
    return t;
  }

  function h2(origin: string): ClientHttp2Session {
    const session = connectH2(origin, { rejectUnauthorized: false });
    session.on("error", () => {});
    closers.push(() => session.destroy());
    return session;
  }

  function tls(port: number, alpn: string[]): TLSSocket {
    const socket = connectTls({
      port,
      host: "127.0.0.1",
      rejectUnauthorized: false,
      ALPNProtocols: alpn,
    });
    socket.on("error", () => {});
    closers.push(() => socket.destroy());
    return socket;
  }

  // What the server sent until the connection closed. A reset after the answer (the server drops
  // the connection with the client's last bytes unread) ends it too: the text is what counts.
  function received(socket: Socket): { text: () => string; closed: Promise<void> } {
    let text = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (text += chunk));
    return { text: () => text, closed: new Promise((resolve) => socket.once("close", resolve)) };
  }

  test("answers an HTTP/1.1 CONNECT on the TLS port with 405 and the reason", async () => {
    const { origin } = await start();
    const socket = tls(Number(new URL(origin).port), ["http/1.1"]);
    await once(socket, "secureConnect");
    const answer = received(socket);
    socket.write("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    await answer.closed;
    assert.match(answer.text(), /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    assert.ok(
      answer.text().endsWith("\r\n\r\nCONNECT is not served: this is a Mercure hub, not a proxy\n"),
      answer.text(),
    );
  });

  test("answers 400 with the reason to an HTTP/2 request whose :authority is no host[:port]", async () => {
    const { origin, publisherToken } = await start();
    const session = h2(origin);
    for (const authority of ["127.0.0.1:99999", "[1]"]) {
      const stream = session.request({
        ":method": "POST",
        ":path": "/.well-known/mercure",
        ":authority": authority,
        authorization: `Bearer ${publisherToken}`,
        "content-type": "application/x-www-form-urlencoded",
      });
      stream.end("topic=/.well-known/mercure/subscriptions/x&data=forged");
      const [headers] = (await once(stream, "response")) as [Record<string, unknown>];
      let body = "";
      stream.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      await once(stream, "end");
      assert.equal(headers[":status"], 400, authority);
      assert.equal(body, "the Host header is not a valid host[:port]\n", authority);
    }
  });

  test("answers 408 with the reason to an HTTP/1.1 client that trickles its headers", async () => {
    const { origin } = await start();
    const socket = tls(Number(new URL(origin).port), ["http/1.1"]);
    await once(socket, "secureConnect");
    const answer = received(socket);
    socket.write("GET /.well-known/mercure?topic=a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    const trickle = setInterval(() => socket.write("x"), 100);
    closers.push(() => clearInterval(trickle));
    socket.once("data", () => clearInterval(trickle));
    await answer.closed;
    assert.match(answer.text(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.ok(answer.text().endsWith(`\r\n\r\n${LATE}`), answer.text());
  });

  test("answers 408 with the reason to an HTTP/2 publish whose body never ends, and keeps a stream older than the bound", async () => {
    const { origin, publisherToken } = await start();
    const session = h2(origin);
    const events = session.request({ ":path": "/.well-known/mercure?topic=a" });
    events.setEncoding("utf8");
    let stream = "";
    events.on("data", (chunk: string) => (stream += chunk));
    await once(events, "response");
    const slow = session.request({
      ":method": "POST",
      ":path": "/.well-known/mercure",
      authorization: `Bearer ${publisherToken}`,
      "content-type": "application/x-www-form-urlencoded",
    });
    slow.write("topic=a&data=never");
    const [headers] = (await once(slow, "response")) as [IncomingHttpHeaders];
    assert.equal(headers[":status"], 408);
    let body = "";
    slow.setEncoding("utf8");
    slow.on("data", (chunk: string) => (body += chunk));
    await once(slow, "close");
    assert.equal(body, LATE);
    // The event stream has outlived the request timeout, and still gets what is published.
    const ok = session.request({
      ":method": "POST",
      ":path": "/.well-known/mercure",
      authorization: `Bearer ${publisherToken}`,
      "content-type": "application/x-www-form-urlencoded",
    });
    ok.end("topic=a&data=after");
    const [okHeaders] = (await once(ok, "response")) as [IncomingHttpHeaders];
    assert.equal(okHeaders[":status"], 200);
    await until(() => stream.includes("data: after\n"), "the stream to receive the later update");
    assert.ok(!stream.includes("never"), "the refused publish was not delivered");
  });

  test("publishes nothing of an HTTP/2 publish whose connection is lost mid-body", async () => {
    const { origin, publisherToken } = await start();
    const session = h2(origin);
    const events = session.request({ ":path": "/.well-known/mercure?topic=a" });
    events.setEncoding("utf8");
    let stream = "";
    events.on("data", (chunk: string) => (stream += chunk));
    await once(events, "response");
    const post = (on: ClientHttp2Session, body: string, finish: boolean) => {
      const req = on.request({
        ":method": "POST",
        ":path": "/.well-known/mercure",
        authorization: `Bearer ${publisherToken}`,
        "content-type": "application/x-www-form-urlencoded",
      });
      req.on("error", () => {});
      if (finish) req.end(body);
      else req.write(body);
      return req;
    };
    // A stream's close() sends END_STREAM before its RST_STREAM (a complete request): the
    // connection itself goes away here, with the body half sent.
    const doomed = h2(origin);
    const cut = post(doomed, "topic=a&data=cut", false);
    await new Promise((resolve) => setTimeout(resolve, 200));
    doomed.destroy();
    await once(cut, "close");
    await new Promise((resolve) => setTimeout(resolve, 200));
    const whole = post(session, "topic=a&data=whole", true);
    const [headers] = (await once(whole, "response")) as [IncomingHttpHeaders];
    assert.equal(headers[":status"], 200);
    await until(() => stream.includes("data: whole\n"), "the stream to receive the whole publish");
    assert.ok(!stream.includes("data: cut"), "the cut publish was not delivered");
  });

  test("ends a TLS handshake that never comes within the headers timeout", async () => {
    const { origin } = await start();
    const socket = connectTcp(Number(new URL(origin).port), "127.0.0.1");
    socket.on("error", () => {});
    closers.push(() => socket.destroy());
    const started = Date.now();
    await once(socket, "close");
    // Node's own bound is 120 s; the test's timeout would end the test long before that.
    assert.ok(Date.now() - started < 60_000);
  });

  test("closes an HTTP/2 session with no stream open after the idle timeout, and keeps one with an event stream", async () => {
    const { origin } = await start(600);
    const idle = h2(origin);
    const health = idle.request({ ":path": "/healthz" });
    health.resume();
    await once(health, "close");
    const busy = h2(origin);
    const events = busy.request({ ":path": "/.well-known/mercure?topic=a" });
    events.resume();
    await once(events, "response");
    await once(idle, "close");
    // Keep-alive comments every 200 ms keep the busy session active; it is also never closed
    // while its stream is open, whatever the timer says.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(busy.closed || busy.destroyed, false);
    assert.equal(events.closed, false);
  });

  test("closes an idle HTTP/1.1 keep-alive connection on the TLS port after the idle timeout", async () => {
    const { origin } = await start(600);
    const socket = tls(Number(new URL(origin).port), ["http/1.1"]);
    await once(socket, "secureConnect");
    const answer = received(socket);
    socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await answer.closed;
    assert.match(answer.text(), /^HTTP\/1\.1 200 OK\r\n/);
  });
});
