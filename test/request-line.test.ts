import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { KEY, type Run, serve, waitFor } from "./cli-harness.ts";
import { sign } from "./tokens.ts";

/** Sends raw bytes on a fresh connection and resolves with everything the hub answers. */
async function raw(url: string, bytes: string): Promise<string> {
  const { port } = new URL(url);
  const socket = connect(Number(port), "127.0.0.1");
  let answer = "";
  socket.setEncoding("utf8").on("data", (chunk: string) => {
    answer += chunk;
    // One answer is enough: close as soon as its body is in.
    if (/\r\n\r\n[^\n]*\n$/.test(answer)) socket.end();
  });
  socket.write(bytes);
  await new Promise<void>((resolve) => {
    socket.once("close", () => resolve());
    socket.setTimeout(5000, () => socket.destroy());
  });
  return answer;
}

describe("request targets node:http accepts but URL does not", () => {
  let hub: { run: Run; url: string };
  before(async () => {
    hub = await serve(["--anonymous"], { CRIER_JWT_KEY: KEY });
  });
  after(async () => {
    hub.run.child.kill("SIGTERM");
    assert.equal(await hub.run.exit, 0, "the hub was still alive at the end");
  });

  // An origin-form target is a path even when it starts with `//` (here: no such path).
  for (const [line, answered] of [
    ["GET //:99999 HTTP/1.1", /^HTTP\/1\.1 404 /],
    ["POST //:99999 HTTP/1.1", /^HTTP\/1\.1 404 /],
    ["GET http://a:99999/ HTTP/1.1", /^HTTP\/1\.1 400 [\s\S]*request target must be a path/],
    ["GET http://[ HTTP/1.1", /^HTTP\/1\.1 400 [\s\S]*request target must be a path/],
    ["GET * HTTP/1.1", /^HTTP\/1\.1 400 [\s\S]*request target must be a path/],
  ] as const) {
    test(`answers "${line}" with a 4xx and a reason, and keeps serving`, async () => {
      const answer = await raw(hub.url, `${line}\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n`);
      assert.match(answer, answered);
      const health = await fetch(new URL("/healthz", hub.url));
      assert.equal(health.status, 200);
    });
  }

  test("answers CONNECT with 405 and a reason instead of dropping the connection", async () => {
    const answer = await raw(
      hub.url,
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    );
    assert.match(answer, /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    assert.match(answer, /\r\n\r\nCONNECT is not served: this is a Mercure hub, not a proxy\n$/);
    assert.equal((await fetch(new URL("/healthz", hub.url))).status, 200);
  });

  // The hub's own URL is made from the Host header (the base of relative topics and of the
  // reserved namespace test): a Host the URL parser refuses must not get as far as a publish.
  for (const host of ["a b/c", "127.0.0.1:99999", "a:65536", "[1]", "[::1"]) {
    test(`answers the Host header "${host}" with 400, a publish too`, async () => {
      for (const request of [
        `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
        `POST /.well-known/mercure HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 54\r\n\r\ntopic=/.well-known/mercure/subscriptions/x&data=forged`,
      ]) {
        const answer = await raw(hub.url, request);
        assert.match(answer, /^HTTP\/1\.1 400 /);
        assert.match(answer, /\r\n\r\nthe Host header is not a valid host\[:port\]\n$/);
      }
    });
  }

  // [spec, RFC 9112 §3.2] more than one Host header field line: 400. node:http keeps the first,
  // a proxy in front may have routed by another.
  test("answers two Host headers with 400", async () => {
    const answer = await raw(
      hub.url,
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n",
    );
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /\r\n\r\nthe request has more than one Host header\n$/);
  });

  test("reads the path of an absolute-form target", async () => {
    const answer = await raw(
      hub.url,
      "GET http://localhost/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert.match(answer, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\nok\n$/);
  });

  // [RFC 9112 §3.2.2] the origin server MUST ignore the received Host header field and use the
  // host information of the request-target: a relative URL pattern resolves against the target's.
  test("takes the hub's own origin from an absolute-form target, not from Host", async () => {
    const { port } = new URL(hub.url);
    const socket = connect(Number(port), "127.0.0.1");
    let received = "";
    socket.setEncoding("utf8").on("data", (chunk: string) => {
      received += chunk;
    });
    socket.write(
      "GET http://a.example/.well-known/mercure?match_urlpattern=/books/* HTTP/1.1\r\nHost: b.example\r\n\r\n",
    );
    try {
      await waitFor(() => (received.includes("\r\n\r\n") ? true : undefined), "the head");
      assert.match(received, /^HTTP\/1\.1 200 /);
      const token = await sign({ mercure: { publish: ["*"] } }, KEY);
      for (const topic of ["http://b.example/books/1", "http://a.example/books/2"]) {
        const answer = await fetch(new URL("/.well-known/mercure", hub.url), {
          method: "POST",
          headers: { authorization: `Bearer ${token}` },
          body: new URLSearchParams({ topic, data: topic }),
        });
        assert.equal(answer.status, 200);
      }
      await waitFor(
        () => (received.includes("data: http://a.example/books/2") ? true : undefined),
        "the update",
      );
      assert.doesNotMatch(received, /data: http:\/\/b\.example/);
    } finally {
      socket.destroy();
    }
  });
});
