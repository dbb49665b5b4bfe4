/**
 * Plain JavaScript can pass anything: each public factory and function refuses an argument of
 * the wrong shape with a CrierError whose code is stable and whose message names the fix, never
 * a TypeError from deep inside or a silent default.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, test } from "node:test";
import { Registry } from "prom-client";
import { eventStream } from "../src/adapters/fetch.ts";
import {
  compileSelector,
  createHub,
  encodeComment,
  encodeEvent,
  type Hub,
  isCrierError,
  subscribeNode,
} from "../src/index.ts";
import {
  Authenticator,
  activeSubscriptionsOf,
  createFetchHandler,
  createHandler,
  createHubServer,
  discoveryLink,
  mintAccessToken,
  mintToken,
  shutdown,
} from "../src/mercure/index.ts";
import { Readiness, registerMetrics } from "../src/ops/metrics.ts";
import { SECRET } from "./helpers.ts";

// What a plain JavaScript caller may hand over: the types say nothing at run time.
const js = (value: unknown) => value as never;

/** A CrierError with `code` whose message matches `fix`. */
function refused(code: string, fix: RegExp) {
  return (err: unknown) => {
    assert.ok(isCrierError(err), `expected a CrierError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, fix);
    return true;
  };
}
const invalid = (fix: RegExp) => refused("CRIER_ERR_INVALID_OPTION", fix);

describe("public entries refuse arguments of the wrong shape, naming the fix", () => {
  let hub: Hub;
  afterEach(() => hub?.close());

  test("createHub: options of the wrong shape, a backplane that is none, a timer Node cannot set", () => {
    for (const [options, fix] of [
      [{ queue: null }, /queue must be an object/],
      [{ history: 5 }, /history must be an object/],
      [{ backplane: {} }, /backplane must implement Backplane .*; start, publish, replay/],
      [{ keepAliveMs: 2 ** 31 }, /keepAliveMs must be an integer from 0 to 2147483647/],
      [{ readyTimeoutMs: 2 ** 40 }, /readyTimeoutMs must be an integer from 0 to 2147483647/],
      // A hint past that would, with its jitter, not be an integer: close() failed half-way.
      [{ closeRetryMs: Number.MAX_SAFE_INTEGER }, /closeRetryMs must be an integer from 0 to/],
      [{ history: { maxEvents: 2 ** 32 } }, /history.maxEvents must be an integer from 0 to 1/],
      [{ pushback: null }, /pushback must be an options object, or false .*; got null/],
      [{ pushback: [] }, /pushback must be an options object, or false .*; got an array/],
      // A misspelt option would be a silent default.
      [{ keepAlive: 5000 }, /createHub has no option "keepAlive" \(did you mean keepAliveMs\?\)/],
      [{ queue: { maxEvent: 1 } }, /queue has no option "maxEvent" \(did you mean maxEvents\?\)/],
      [{ history: { size: 5 } }, /history has no option "size"; it takes maxEvents, maxBytes/],
      [{ pushback: { hold: 5 } }, /pushback has no option "hold" \(did you mean holdMs\?\)/],
    ] as const) {
      assert.throws(() => createHub(js(options)), invalid(fix), JSON.stringify(options));
    }
  });

  test("Authenticator: a PEM block that is no key", () => {
    const pem =
      "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n";
    assert.throws(
      () => new Authenticator({ publisherKey: pem, subscriberKey: SECRET }),
      invalid(/^publisherKey is a PEM block but no usable public key or certificate/),
    );
  });

  test("createHandler (and the servers and Fetch handler built on it)", () => {
    hub = createHub({ keepAliveMs: 0 });
    assert.throws(() => createHandler(js(undefined)), invalid(/needs options: \{ hub/));
    assert.throws(() => createHandler(js({ hub: {} })), invalid(/hub made by createHub\(\)/));
    assert.throws(
      () => createHandler(js({ hub, anonymous: "false" })),
      invalid(/anonymous must be true or false/),
    );
    assert.throws(
      () => createHandler(js({ hub, corsOrigins: "https://a.test" })),
      invalid(/corsOrigins must be an array of strings/),
    );
    assert.throws(
      () => createHandler(js({ hub, corsOrigins: ["https://a.test/"] })),
      invalid(/corsOrigins: "https:\/\/a\.test\/" is not an origin/),
    );
    assert.throws(
      () => createHandler(js({ hub, routes: { "/x": "y" } })),
      invalid(/routes\["\/x"\] must be a function/),
    );
    assert.throws(
      () => createHandler(js({ hub, ready: true })),
      invalid(/ready must be a function/),
    );
    assert.throws(
      () => createHubServer(js({ hub, subscriptions: 1 })),
      invalid(/subscriptions must be true or false/),
    );
    assert.throws(
      () => createFetchHandler(js({ hub: null })),
      invalid(/hub made by createHub\(\)/),
    );
  });

  test("Authenticator, and its verify", async () => {
    hub = createHub({ keepAliveMs: 0 });
    assert.throws(() => new Authenticator(js(null)), invalid(/needs options/));
    assert.throws(
      () => new Authenticator(js({ publisherKey: Buffer.from(SECRET) })),
      invalid(/publisherKey must be a non-empty string/),
    );
    assert.throws(
      () => new Authenticator(js({ subscriberKey: 42 })),
      invalid(/subscriberKey must be a non-empty string/),
    );
    assert.throws(() => new Authenticator(js({ jwks: [] })), invalid(/"keys" array/));
    assert.throws(
      () => new Authenticator(js({ audience: 1 })),
      invalid(/audience must be a non-empty string/),
    );
    assert.throws(
      () => new Authenticator(js({ cacheSize: "big" })),
      invalid(/cacheSize must be an integer/),
    );
    const auth = new Authenticator({ publisherKey: SECRET });
    await assert.rejects(auth.verify("a.b.c", js("admin")), invalid(/"publisher" or "subscriber"/));
    await assert.rejects(
      auth.verify(js(42), "publisher"),
      refused("CRIER_ERR_INVALID_TOKEN", /not a string/),
    );
  });

  test("mintToken and mintAccessToken", async () => {
    hub = createHub({ keepAliveMs: 0 });
    await assert.rejects(
      mintToken(js(undefined), { publish: ["*"] }),
      invalid(/signing key as its first argument/),
    );
    await assert.rejects(mintToken(SECRET, js(undefined)), invalid(/mintToken needs options/));
    await assert.rejects(
      mintToken(SECRET, js({ publish: "*" })),
      invalid(/publish must be an array of strings/),
    );
    await assert.rejects(
      mintToken(SECRET, js({ ttlSeconds: "1h" })),
      invalid(/ttlSeconds must be an integer/),
    );
    await assert.rejects(mintAccessToken(SECRET, js({})), invalid(/needs audience/));
    await assert.rejects(
      mintAccessToken(SECRET, js({ audience: "https://hub.test", publish: ["*"] })),
      invalid(/publish must be an array of \{ match, match_type/),
    );
  });

  test("compileSelector", () => {
    hub = createHub({ keepAliveMs: 0 });
    assert.throws(() => compileSelector(js(42)), invalid(/a string or \{ exact \}/));
    assert.throws(() => compileSelector(js(null)), invalid(/a string or \{ exact \}/));
    assert.throws(() => compileSelector(js({ exact: 42 })), invalid(/exact must be a string/));
    assert.throws(
      () => compileSelector(js({ urlpattern: "/a", base: 1 })),
      invalid(/base must be a string/),
    );
    assert.throws(
      () => compileSelector(js({ regex: "a.*" })),
      invalid(/unknown topic selector kind/),
    );
    // A subscription's selectors go through the same check.
    assert.throws(
      () =>
        hub.connect(
          js({ start() {}, write: () => true, end() {}, destroy() {} }),
          js({ topics: [7] }),
        ),
      invalid(/a string or \{ exact \}/),
    );
  });

  test("hub.connect and hub.updates refuse a resume id or headers of the wrong type", () => {
    hub = createHub({ keepAliveMs: 0 });
    assert.throws(
      () => hub.updates(js({ topics: ["t"], lastEventId: 5 })),
      invalid(/lastEventId must be a string/),
    );
    const sink = { start() {}, write: () => true, end() {}, destroy() {} };
    assert.throws(
      () => hub.connect(sink, js({ topics: ["t"], headers: "x-a: 1" })),
      invalid(/headers must be an object/),
    );
    for (const [headers, fix] of [
      [{ "X-Trace": "a\nb" }, /the value of X-Trace must be a string without control/],
      [{ "X-Count": 5 }, /the value of X-Count must be a string/],
      [{ "Bad Name": "x" }, /"Bad Name" is not a header name/],
    ] as const) {
      assert.throws(() => hub.connect(sink, js({ topics: ["t"], headers })), invalid(fix));
    }
    assert.equal(hub.stats.subscribers, 0, "nothing was registered");
  });

  test("hub.close refuses options that are no object, and stays open", async () => {
    hub = createHub({ keepAliveMs: 0 });
    await assert.rejects(hub.close(js(null)), invalid(/close takes options/));
    assert.equal(hub.closing, false);
  });

  test("subscribeNode and eventStream: no hub, no options, a head already sent", async () => {
    hub = createHub({ keepAliveMs: 0 });
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const errors: unknown[] = [];
    server.on("request", (req, res) => {
      for (const call of [
        () => subscribeNode(js(undefined), req, res, { topics: ["t"] }),
        () => subscribeNode(js({}), req, res, { topics: ["t"] }),
        () => subscribeNode(hub, req, res, js(undefined)),
        () => subscribeNode(hub, req, res, js(null)),
      ]) {
        try {
          call();
        } catch (err) {
          errors.push(err);
        }
      }
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      res.write(": the app's own\n\n");
      try {
        subscribeNode(hub, req, res, { topics: ["t"] });
      } catch (err) {
        errors.push(err);
      }
      res.end();
    });
    try {
      const { port } = server.address() as AddressInfo;
      const answer = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(await answer.text(), ": the app's own\n\n", "the app's response is left alone");
      assert.equal(errors.length, 5);
      const fixes = [
        /subscribeNode's first argument needs a hub/,
        /subscribeNode's first argument needs a hub/,
        /subscribeNode needs options with topics/,
        /subscribeNode needs options with topics/,
        /whose head has not been sent/,
      ];
      for (const [i, err] of errors.entries()) invalid(fixes[i] as RegExp)(err);
      assert.equal(hub.stats.subscribers, 0, "nothing was registered");
    } finally {
      server.close();
    }
    const request = new Request("http://127.0.0.1/events");
    await assert.rejects(
      eventStream(js(undefined), request, { topics: ["t"] }),
      invalid(/eventStream's first argument needs a hub/),
    );
    await assert.rejects(
      eventStream(hub, request, { topics: ["t"], headers: { "X-Trace": "a\nb" } }),
      invalid(/X-Trace/),
    );
  });

  test("encodeEvent and encodeComment", () => {
    hub = createHub({ keepAliveMs: 0 });
    const badEvent = (fix: RegExp) => refused("CRIER_ERR_INVALID_EVENT", fix);
    assert.throws(() => encodeEvent(js(null)), badEvent(/needs an event object/));
    assert.throws(
      () => encodeEvent(js({ data: { a: 1 } })),
      badEvent(/data must be a string \(JSON.stringify/),
    );
    assert.throws(() => encodeEvent(js({ id: 7 })), badEvent(/id must be a string/));
    assert.throws(
      () => encodeEvent(js({ retry: "5" })),
      badEvent(/retry must be a non-negative integer/),
    );
    assert.throws(() => encodeComment(js(5)), badEvent(/text must be a string/));
  });

  test("discoveryLink, activeSubscriptionsOf, Readiness, registerMetrics and shutdown", async () => {
    hub = createHub({ keepAliveMs: 0 });
    assert.throws(() => discoveryLink(js(42)), invalid(/hub URL, or an array of them, as strings/));
    assert.throws(() => discoveryLink(js([new URL("https://hub.test")])), invalid(/as strings/));
    assert.throws(
      () => discoveryLink("https://hub.test", js({ self: 1 })),
      invalid(/self must be a string/),
    );
    assert.throws(
      () => activeSubscriptionsOf(js(undefined)),
      invalid(/activeSubscriptionsOf needs a hub/),
    );
    assert.throws(() => new Readiness(js({})), invalid(/new Readiness needs a hub/));
    assert.throws(
      () => registerMetrics(js({ hub: "hub" })),
      invalid(/registerMetrics's hub option needs a hub/),
    );
    assert.throws(
      () => registerMetrics(js({ hub, registry: {} })),
      invalid(/registry option must be a prom-client Registry/),
    );
    const registry = new Registry();
    registerMetrics({ hub, registry });
    assert.throws(
      () => registerMetrics({ hub, registry }),
      invalid(/already holds Crier's metrics .*: give each hub a registry of its own/),
    );
    await assert.rejects(shutdown(js(undefined), hub), invalid(/shutdown needs the server/));
  });
});

describe("RedisBackplane refuses options of the wrong shape", () => {
  test("before it connects anywhere", async () => {
    const { RedisBackplane } = await import("../src/backplane/redis.ts");
    assert.throws(() => new RedisBackplane(js(null)), invalid(/takes options: \{ url\?/));
    assert.throws(
      () => new RedisBackplane(js({ url: 6379 })),
      invalid(/url must be a non-empty string/),
    );
    assert.throws(
      () => new RedisBackplane(js({ blockMs: "2s" })),
      invalid(/blockMs must be an integer/),
    );
    assert.throws(
      () => new RedisBackplane(js({ redis: "tls" })),
      invalid(/redis must be ioredis options/),
    );
    assert.throws(
      () => new RedisBackplane(js({ prefix: 1 })),
      invalid(/redis prefix must be a string/),
    );
  });
});
