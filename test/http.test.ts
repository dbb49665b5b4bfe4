import assert from "node:assert/strict";
import { once } from "node:events";
import { request } from "node:http";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { EventSource } from "eventsource";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import type { Subscription } from "../src/subscriber.ts";
import { openStream, publish, SECRET, sleep, startHub, type TestHub, until } from "./helpers.ts";

describe("the Mercure endpoint over HTTP", () => {
  let t: TestHub;
  before(async () => {
    t = await startHub({}, { maxBodyBytes: 4096, corsOrigins: ["https://app.example"] });
  });
  after(() => t.close());

  test("answers a subscription with the SSE headers and flushes a comment at once", async () => {
    const s = await openStream(`${t.url}?topic=wire`);
    try {
      assert.equal(s.status, 200);
      assert.equal(s.headers["content-type"], "text/event-stream");
      assert.match(String(s.headers["cache-control"]), /no-cache/);
      assert.equal(s.headers["x-accel-buffering"], "no");
      // The standalone hub takes the socket over: the body is delimited by the connection's close.
      assert.equal(s.headers.connection, "close");
      assert.equal(s.headers["transfer-encoding"], undefined);
      await until(() => s.raw() === ":\n", "the opening comment");
    } finally {
      s.close();
    }
  });

  test("notices at once when a subscriber whose socket it took over goes away", async () => {
    const connected = new Promise<Subscription>((resolve) => t.hub.once("connect", resolve));
    const s = await openStream(`${t.url}?topic=leaving`);
    const subscription = await connected;
    await s.waitForComment();
    const gone = new Promise((resolve) =>
      t.hub.on("disconnect", (sub, reason) => sub === subscription && resolve(reason)),
    );
    s.close();
    assert.equal(await gone, "client");
    assert.equal(subscription.closed, true);
  });

  test("puts exactly the encoded event on the wire", async () => {
    const s = await openStream(`${t.url}?topic=wire`);
    try {
      const res = await publish(
        t.url,
        { topic: "wire", id: "e-1", type: "greeting", data: "a\nb" },
        t.publisherToken,
      );
      assert.equal(res.status, 200);
      assert.equal(res.body, "e-1");
      assert.match(String(res.headers.get("content-type")), /^text\/plain/);
      await s.waitForEvents(1);
      assert.equal(s.raw(), ":\nid: e-1\nevent: greeting\ndata: a\ndata: b\n\n");
    } finally {
      s.close();
    }
  });

  test("delivers multi-line data with a blank line and leading spaces byte for byte to an EventSource", async () => {
    const data = "first line\n\n   indented\r\n\ttab\nlast ";
    const es = new EventSource(`${t.url}?topic=multi`);
    try {
      await new Promise((resolve, reject) => {
        es.onopen = resolve;
        es.onerror = reject;
      });
      const received = new Promise<MessageEvent>((resolve) => {
        es.onmessage = resolve;
      });
      const res = await publish(t.url, { topic: "multi", data }, t.publisherToken);
      const event = await received;
      assert.equal(event.data, data.replace("\r\n", "\n"));
      assert.equal(event.lastEventId, res.body);
    } finally {
      es.close();
    }
  });

  for (const [field, value] of [
    ["id", "a\nb"],
    ["id", "a\rb"],
    ["id", "a\u0000b"],
    ["type", "x\ny"],
    ["type", "x\ry"],
    ["type", "x\u0000y"],
  ] as const) {
    test(`refuses a publish whose ${field} holds ${JSON.stringify(value)} with 400 and delivers nothing`, async () => {
      const s = await openStream(`${t.url}?topic=inject`);
      try {
        const res = await publish(
          t.url,
          { topic: "inject", data: "x", [field]: value },
          t.publisherToken,
        );
        assert.equal(res.status, 400);
        assert.match(res.body, /must not contain CR, LF or NUL/);
        const ok = await publish(t.url, { topic: "inject", data: "after" }, t.publisherToken);
        const [first] = await s.waitForEvents(1);
        assert.equal(first?.data, "after");
        assert.equal(first?.id, ok.body);
      } finally {
        s.close();
      }
    });
  }

  test("refuses an id with control characters, which no response header could carry", async () => {
    for (const id of ["a\u0001b", "a\u007fb", "esc\u001b"]) {
      const res = await publish(t.url, { topic: "ctl", id }, t.publisherToken);
      assert.equal(res.status, 400, JSON.stringify(id));
      assert.match(res.body, /control characters/);
    }
    const s = await openStream(`${t.url}?topic=ctl`);
    assert.equal(s.status, 200, "later subscriptions are unaffected");
    s.close();
  });

  test("resumes from a non-ASCII id sent, as browsers do, in UTF-8", async () => {
    const utf8 = (text: string) => Buffer.from(text, "utf8").toString("latin1");
    await publish(t.url, { topic: "utf", id: "café-1" }, t.publisherToken);
    await publish(t.url, { topic: "utf", id: "café-2", data: "next" }, t.publisherToken);
    const fresh = await openStream(`${t.url}?topic=utf`);
    assert.equal(fresh.headers["last-event-id"], utf8("café-2"));
    fresh.close();
    const s = await openStream(`${t.url}?topic=utf`, { "Last-Event-ID": utf8("café-1") });
    assert.equal(s.headers["last-event-id"], utf8("café-1"));
    const [event] = await s.waitForEvents(1);
    assert.deepEqual([event?.id, event?.data], ["café-2", "next"]);
    s.close();
  });

  test("lets go of every subscription when a client that pipelined several closes", async () => {
    const open = new Set<Subscription>();
    const onConnect = (sub: Subscription) => sub.topics.includes("pipe") && open.add(sub);
    const onDisconnect = (sub: Subscription) => open.delete(sub);
    t.hub.on("connect", onConnect);
    t.hub.on("disconnect", onDisconnect);
    try {
      const socket = connect(t.port, "127.0.0.1");
      const get = "GET /.well-known/mercure?topic=pipe HTTP/1.1\r\nHost: localhost\r\n\r\n";
      socket.write(get + get + get);
      for (let i = 0; i < 100 && open.size === 0; i++) await sleep(10);
      assert.ok(open.size > 0, "the pipelined requests were served");
      socket.destroy();
      for (let i = 0; i < 200 && open.size > 0; i++) await sleep(10);
      assert.equal(open.size, 0, "no subscription outlives its connection");
    } finally {
      t.hub.off("connect", onConnect);
      t.hub.off("disconnect", onDisconnect);
    }
  });

  test("refuses bad publish fields with 400 and a reason", async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ data: "no topic" }, /missing topic/],
      [{ topic: "t", retry: "soon" }, /retry/],
      [{ topic: "*", data: "x" }, /selector/],
    ];
    for (const [fields, reason] of cases) {
      const res = await publish(t.url, fields, t.publisherToken);
      assert.equal(res.status, 400, JSON.stringify(fields));
      assert.match(res.body, reason);
    }
  });

  test("refuses with 403 a publish to the hub's reserved subscription topics", async () => {
    for (const topic of [
      "/.well-known/mercure/subscriptions/foo/urn:uuid:1",
      "https://hub.example/.well-known/mercure/subscriptions/foo/bar",
    ]) {
      const res = await publish(t.url, { topic, data: "{}" }, t.publisherToken);
      assert.equal(res.status, 403, topic);
      assert.match(res.body, /reserved/);
    }
  });

  test("answers 409 for a publisher id already in the history", async () => {
    assert.equal((await publish(t.url, { topic: "t", id: "dup" }, t.publisherToken)).status, 200);
    const res = await publish(t.url, { topic: "t", id: "dup" }, t.publisherToken);
    assert.equal(res.status, 409);
  });

  test("answers 401 without a token or with a bad one, 403 when the claim does not cover a topic", async () => {
    const none = await publish(t.url, { topic: "t" });
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    const forged = await mintToken("another-secret-another-secret-12345", { publish: ["*"] });
    const bad = await publish(t.url, { topic: "t" }, forged);
    assert.equal(bad.status, 401);
    assert.match(bad.body, /signature/);
    const narrow = await mintToken(SECRET, { publish: ["books"] });
    const partial = await publish(t.url, { topic: ["books", "authors"] }, narrow);
    assert.equal(partial.status, 403);
    assert.equal((await publish(t.url, { topic: "books" }, narrow)).status, 200);
    const expired = await mintToken(SECRET, { publish: ["*"], ttlSeconds: 0 });
    await sleep(1100);
    assert.equal((await publish(t.url, { topic: "t" }, expired)).status, 401);
  });

  test("accepts the token from the mercureAuthorization cookie", async () => {
    const res = await publish(t.url, { topic: "t" }, undefined, {
      Cookie: `mercureAuthorization=${t.publisherToken}`,
      Origin: `http://127.0.0.1:${t.port}`,
    });
    assert.equal(res.status, 200);
  });

  test("answers 413 for a body over the limit and 415 for a body that is not a form", async () => {
    const big = await publish(t.url, { topic: "t", data: "x".repeat(5000) }, t.publisherToken);
    assert.equal(big.status, 413);
    const json = await fetch(t.url, {
      method: "POST",
      headers: { Authorization: `Bearer ${t.publisherToken}`, "Content-Type": "application/json" },
      body: "{}",
    });
    assert.equal(json.status, 415);
  });

  test("answers 413 while streaming a chunked body past the limit", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(t.url, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${t.publisherToken}`,
          "Content-Type": "application/x-www-form-urlencoded",
        },
      });
      req.on("response", (res) => resolve(res.statusCode ?? 0));
      req.on("error", reject);
      req.write("topic=t&data=");
      for (let i = 0; i < 10; i++) req.write("x".repeat(1000));
      req.end();
    });
    assert.equal(status, 413);
  });

  test("never sends a private update to an anonymous subscriber, only to an authorized one", async () => {
    const anonymous = await openStream(`${t.url}?topic=secret`);
    const token = await mintToken(SECRET, { subscribe: ["secret"] });
    const authorized = await openStream(`${t.url}?topic=secret`, {
      Authorization: `Bearer ${token}`,
    });
    const other = await mintToken(SECRET, { subscribe: ["other"] });
    const unauthorized = await openStream(`${t.url}?topic=secret`, {
      Authorization: `Bearer ${other}`,
    });
    try {
      await publish(t.url, { topic: "secret", data: "private", private: "on" }, t.publisherToken);
      await publish(t.url, { topic: "secret", data: "public" }, t.publisherToken);
      const [first, second] = await authorized.waitForEvents(2);
      assert.equal(first?.data, "private");
      assert.equal(second?.data, "public");
      for (const s of [anonymous, unauthorized]) {
        const events = await s.waitForEvents(1);
        assert.deepEqual(
          events.map((e) => e.data),
          ["public"],
        );
      }
    } finally {
      for (const s of [anonymous, authorized, unauthorized]) s.close();
    }
  });

  test("answers 401 to a subscriber with an invalid token, and 400 without a topic", async () => {
    const s = await openStream(`${t.url}?topic=x`, { Authorization: "Bearer nonsense" });
    assert.equal(s.status, 401);
    s.close();
    const noTopic = await openStream(t.url);
    assert.equal(noTopic.status, 400);
    noTopic.close();
  });

  test("refuses with 413 a publish whose line breaks would make it larger than a subscriber's queue, and evicts nobody", async () => {
    const small = await startHub({ keepAliveMs: 0, queue: { maxBytes: 4096 } });
    const s = await openStream(`${small.url}?topic=breaks`);
    try {
      await s.waitForComment();
      // 1,000 line breaks: a 3 KB body, a 7 KB frame once each line is a `data: ` line.
      const res = await publish(
        small.url,
        { topic: "breaks", data: "\n".repeat(1000) },
        small.publisherToken,
      );
      assert.equal(res.status, 413);
      assert.match(res.body, /encodes to \d+ bytes/);
      const ok = await publish(small.url, { topic: "breaks", data: "after" }, small.publisherToken);
      assert.equal(ok.status, 200);
      assert.equal((await s.waitForEvents(1))[0]?.data, "after");
      assert.equal(small.hub.stats.evicted, 0);
    } finally {
      s.close();
      await small.close();
    }
  });

  test("keeps publishers' idle connections open past node's default idle timeout (5 s, plus 1 s on newer nodes)", async () => {
    const socket = connect(t.port, "127.0.0.1");
    await once(socket, "connect");
    const request = "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n";
    let received = "";
    socket.setEncoding("utf8").on("data", (chunk: string) => {
      received += chunk;
    });
    try {
      socket.write(request);
      await until(() => received.endsWith("ok\n"), "the first answer");
      await sleep(7000);
      assert.equal(socket.destroyed || socket.readyState !== "open", false);
      received = "";
      socket.write(request);
      await until(() => received.endsWith("ok\n"), "the answer on the reused connection");
      assert.match(received, /^HTTP\/1\.1 200/);
    } finally {
      socket.destroy();
    }
  });

  test("answers health checks, CORS preflights for allowed origins only, and 404 elsewhere", async () => {
    assert.equal((await fetch(t.url.replace("/.well-known/mercure", "/healthz"))).status, 200);
    const ok = await fetch(t.url, {
      method: "OPTIONS",
      headers: { Origin: "https://app.example" },
    });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example");
    assert.equal(ok.headers.get("access-control-allow-credentials"), "true");
    const denied = await fetch(t.url, {
      method: "OPTIONS",
      headers: { Origin: "https://evil.example" },
    });
    assert.equal(denied.status, 403);
    assert.equal(denied.headers.get("access-control-allow-origin"), null);
    assert.equal((await fetch(t.url.replace("/.well-known/mercure", "/nope"))).status, 404);
  });
});
