/**
 * The limits an operator sets on subscribers and on slow clients: per address, per second, and
 * the headers/request timeouts that end a slowloris client but never an event stream.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { type IncomingMessage, request } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, describe, test } from "node:test";
import { EventSource } from "eventsource";
import { socketTakeOver } from "../src/adapters/socket-sink.ts";
import { createHub } from "../src/hub.ts";
import { addressKey } from "../src/mercure/http/admission.ts";
import { createHubServer } from "../src/mercure/index.ts";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { KEY, serve } from "./cli-harness.ts";
import {
  openStream,
  publish,
  type StreamClient,
  sleep,
  startHub,
  type TestHub,
  until,
} from "./helpers.ts";

/**
 * A subscription from a chosen source address (any of 127.0.0.0/8 reaches 127.0.0.1), as an
 * event-stream client asks for it, or (`accept`) as another HTTP client does.
 */
async function subscribeFrom(url: string, localAddress: string, accept = "text/event-stream") {
  const req = request(url, { localAddress, agent: false, headers: { Accept: accept } });
  req.end();
  const [res] = (await once(req, "response")) as [IncomingMessage];
  let body = "";
  res.setEncoding("utf8");
  res.on("data", (chunk: string) => (body += chunk));
  return {
    status: res.statusCode,
    headers: res.headers,
    body: () => body,
    close: () => req.destroy(),
  };
}

describe("subscriber limits", () => {
  let t: TestHub | undefined;
  const streams: { close(): void }[] = [];
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await t?.close();
    t = undefined;
  });

  test("groups IPv6 clients by /64 and unmaps IPv4-mapped addresses", () => {
    assert.equal(addressKey("127.0.0.1"), "127.0.0.1");
    assert.equal(addressKey("::ffff:10.0.0.7"), "10.0.0.7");
    assert.equal(addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
  });

  test("answers 429 to the subscription past maxSubscribersPerIp and leaves the others alone", async () => {
    t = await startHub({}, { maxSubscribersPerIp: 3 });
    const url = `${t.url}?topic=a`;
    const mine = [];
    for (let i = 0; i < 3; i++) mine.push(await openStream(url));
    streams.push(...mine);
    const other = await subscribeFrom(url, "127.0.0.2");
    streams.push(other);
    const refused = await subscribeFrom(url, "127.0.0.1");
    streams.push(refused);
    assert.deepEqual(
      mine.map((s) => s.status),
      [200, 200, 200],
    );
    assert.equal(other.status, 200, "another address is not limited by this one's streams");
    assert.equal(refused.status, 429);
    assert.equal(refused.headers["retry-after"], "5");
    await until(() => refused.body().endsWith("\n"), "the refusal's body");
    assert.equal(
      refused.body(),
      "your address (127.0.0.1) holds the maximum of 3 subscriptions; close one or retry later\n",
    );
    // The admitted streams are untouched: each receives the next update.
    assert.equal(
      (await publish(t.url, { topic: "a", data: "still here" }, t.publisherToken)).status,
      200,
    );
    for (const s of mine) assert.equal((await s.waitForEvents(1))[0]?.data, "still here");
    await until(() => other.body().includes("still here"), "the other address's update");
    // One leaves: its place is free again.
    (mine[0] as StreamClient).close();
    await until(() => t?.hub.stats.subscribers === 3, "the closed stream to end");
    const again = await subscribeFrom(url, "127.0.0.1");
    streams.push(again);
    assert.equal(again.status, 200);
  });

  test("answers 503 with Retry-After past maxSubscribeRate, and admits again a second later", async () => {
    t = await startHub({}, { maxSubscribeRate: 5 });
    const url = `${t.url}?topic=a`;
    const tried = await Promise.all(
      Array.from({ length: 12 }, () => subscribeFrom(url, "127.0.0.1", "*/*")),
    );
    streams.push(...tried);
    const admitted = tried.filter((s) => s.status === 200);
    const refused = tried.filter((s) => s.status === 503);
    assert.equal(admitted.length + refused.length, 12);
    // Five at once, and whatever the bucket refilled while the requests were arriving.
    assert.ok(admitted.length >= 5 && admitted.length < 12, `${admitted.length} admitted`);
    for (const s of refused) assert.equal(s.headers["retry-after"], "1");
    const first = refused[0];
    assert.ok(first !== undefined);
    await until(() => first.body().endsWith("\n"), "the refusal's body");
    assert.equal(
      first.body(),
      "the hub admits at most 5 new subscriptions per second; retry shortly\n",
    );
    assert.equal((await publish(t.url, { topic: "a", data: "x" }, t.publisherToken)).status, 200);
    for (const s of admitted)
      await until(() => s.body().includes("data: x"), "an admitted stream's update");
    await sleep(1100);
    const later = await subscribeFrom(url, "127.0.0.1");
    streams.push(later);
    assert.equal(later.status, 200);
  });

  test("sends EventSources past maxSubscribeRate back with a retry hint, and lets each in by its turn", async () => {
    // closeRetryMs 0: the hint still waits for the refusal's Retry-After (1 s), never 0.
    const hub = await startHub({ closeRetryMs: 0 }, { maxSubscribeRate: 2 });
    t = hub;
    const url = `${hub.url}?topic=a`;
    // A refused one sees an event stream with a retry hint only, and ended.
    const tried = await Promise.all(
      Array.from({ length: 4 }, () => subscribeFrom(url, "127.0.0.1")),
    );
    streams.push(...tried);
    const sentBack = tried.filter((s) => s.headers["content-type"] === "text/event-stream");
    assert.equal(sentBack.length, 4, "every answer is an event stream");
    await until(() => tried.some((s) => s.body().startsWith("retry:")), "a retry hint");
    for (const s of tried.filter((s) => s.body().startsWith("retry:"))) {
      const hint = /^retry: (\d+)\n\n$/.exec(s.body());
      assert.ok(hint !== null && Number(hint[1]) >= 1000 && Number(hint[1]) <= 2000, s.body());
    }
    for (const s of streams.splice(0)) s.close();
    await until(() => hub.hub.stats.subscribers === 0, "the first streams to end");
    await sleep(1100);
    // Real EventSources, more than the bucket admits at once: each gives up on a 503 for good.
    const sources = Array.from({ length: 6 }, () => new EventSource(url));
    const got = sources.map(() => [] as string[]);
    sources.forEach((source, i) => {
      source.onmessage = (e) => got[i]?.push(e.data);
    });
    try {
      // (A source sent back fires `open` too, for the hint's stream: subscribed is what counts.)
      await until(() => hub.hub.stats.subscribers === 6, "all six subscribed", 10_000);
      assert.ok(
        sources.every((source) => source.readyState !== EventSource.CLOSED),
        "none gave up",
      );
      assert.equal(
        (await publish(hub.url, { topic: "a", data: "x" }, hub.publisherToken)).status,
        200,
      );
      await until(() => got.every((g) => g.length === 1), "the update on every EventSource");
    } finally {
      for (const source of sources) source.close();
    }
  });

  test("refuses a headers timeout longer than the request timeout", () => {
    assert.throws(
      () => createHubServer({ hub: createHub(), headersTimeoutMs: 5000, requestTimeoutMs: 1000 }),
      { code: "CRIER_ERR_INVALID_OPTION", message: /must not exceed requestTimeoutMs/ },
    );
  });
});

/** A client that sends a request line, then one header byte every `everyMs`; never finishes. */
function slowloris(port: number, sockets: Set<Socket>, closed: string[]): Socket {
  const socket = connect(port, "127.0.0.1");
  let answer = "";
  socket.setEncoding("latin1");
  socket.on("data", (chunk: string) => (answer += chunk));
  socket.on("error", () => {});
  socket.on("close", () => {
    sockets.delete(socket);
    closed.push(answer);
  });
  socket.write("GET /.well-known/mercure?topic=a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  sockets.add(socket);
  return socket;
}

describe("request timeouts", () => {
  test("closes 500 slowloris clients within the headers timeout while a stream keeps receiving", async () => {
    const { run, url } = await serve([
      "--jwt-key",
      KEY,
      "--anonymous",
      "--headers-timeout",
      "2000",
      "--request-timeout",
      "3000",
    ]);
    const sockets = new Set<Socket>();
    const closed: string[] = [];
    let trickle: NodeJS.Timeout | undefined;
    let stream: StreamClient | undefined;
    try {
      const token = await mintToken(KEY, { publish: ["*"] });
      stream = await openStream(`${url}?topic=a`);
      assert.equal(stream.status, 200);
      const port = Number(new URL(url).port);
      const start = Date.now();
      for (let i = 0; i < 500; i++) {
        slowloris(port, sockets, closed);
        if (i % 100 === 99) await sleep(20);
      }
      trickle = setInterval(() => {
        for (const s of sockets) s.write("x");
      }, 1000);
      // Publishing all along: the stream must get every update while the server reaps.
      let sent = 0;
      while (closed.length < 500) {
        assert.ok(
          Date.now() - start < 20_000,
          `${closed.length}/500 slow clients closed after 20 s`,
        );
        assert.equal((await publish(url, { topic: "a", data: `n${sent}` }, token)).status, 200);
        sent++;
        await stream.waitForEvents(sent);
        await sleep(250);
      }
      const answered = closed.filter((a) => a.startsWith("HTTP/1.1 408"));
      assert.ok(answered.length > 0, "the slow clients are told why");
      assert.match(
        answered[0] as string,
        /\r\n\r\nthe request did not arrive in time \(headers within 2000 ms, all of it within 3000 ms; 0: no limit\)\n$/,
      );
      // The stream is older than both timeouts now and still live.
      await until(() => Date.now() - start > 3500, "the stream to outlive the request timeout");
      assert.equal((await publish(url, { topic: "a", data: "last" }, token)).status, 200);
      const events = await stream.waitForEvents(sent + 1);
      assert.equal(events.at(-1)?.data, "last");
    } finally {
      clearInterval(trickle);
      for (const s of sockets) s.destroy();
      stream?.close();
      run.child.kill("SIGTERM");
      await run.exit;
    }
  });

  test("does not end a stream served through the response (no socket take-over)", async () => {
    socketTakeOver.enabled = false;
    const t = await startHub({}, { headersTimeoutMs: 500, requestTimeoutMs: 1000 });
    try {
      const stream = await openStream(`${t.url}?topic=a`);
      await sleep(2500);
      assert.equal(
        (await publish(t.url, { topic: "a", data: "late" }, t.publisherToken)).status,
        200,
      );
      assert.equal((await stream.waitForEvents(1))[0]?.data, "late");
      stream.close();
    } finally {
      socketTakeOver.enabled = true;
      await t.close();
    }
  });
});
