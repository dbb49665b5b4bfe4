/**
 * The Mercure endpoint as a Fetch handler: called directly with Request objects, and served for
 * real by Node (@hono/node-server), Bun and Deno, each driven by the same scenario over HTTP.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { afterEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { EventSource } from "eventsource";
import { createHub, type Hub, isCrierError } from "../src/index.ts";
import {
  createFetchHandler,
  type FetchHandler,
  MERCURE_PATH,
  mintToken,
} from "../src/mercure/index.ts";
import { SECRET, startHub } from "./helpers.ts";
import { available, readUntil, runtimes, startServer } from "./runtimes.ts";

const FIXTURE = fileURLToPath(new URL("fixtures/mercure-fetch-server.mjs", import.meta.url));
const HUB = "http://hub.test";

const publisher = () => mintToken(SECRET, { publish: ["*"] });
const subscriber = () => mintToken(SECRET, { subscribe: ["*"] });

function publishRequest(base: string, token: string, fields: Record<string, string>): Request {
  return new Request(`${base}${MERCURE_PATH}`, {
    method: "POST",
    body: new URLSearchParams(fields),
    headers: { Authorization: `Bearer ${token}` },
  });
}

describe("createFetchHandler, called with Request objects", () => {
  let hub: Hub;
  let handler: FetchHandler;
  afterEach(() => hub.close());

  function start(options: Partial<Parameters<typeof createFetchHandler>[0]> = {}): void {
    hub = createHub({ keepAliveMs: 0 });
    handler = createFetchHandler({
      hub,
      publisherKey: SECRET,
      subscriberKey: SECRET,
      anonymous: true,
      ...options,
    });
  }

  test("answers a request whose client left before the head, and one whose URL or Host is no URL", async () => {
    start();
    const within = <T>(p: Promise<T>) =>
      Promise.race([p, sleep(5000).then(() => assert.fail("the handler never answered"))]);
    const gone = await within(
      handler(new Request(`${HUB}${MERCURE_PATH}?topic=t`, { signal: AbortSignal.abort() })),
    );
    await gone.body?.cancel();
    assert.equal(hub.stats.subscribers, 0);
    // Bun and Deno pass on URLs Node's Request refuses (a port past 65535), and Bun a relative
    // one when the Host is no authority: a plain object stands in for their Request.
    for (const [url, host] of [
      ["http://127.0.0.1:99999/.well-known/mercure?topic=t", undefined],
      ["/.well-known/mercure?topic=t", "u@h.example"],
    ] as const) {
      const odd = {
        url,
        method: "GET",
        headers: new Headers(host === undefined ? {} : { host }),
        signal: new AbortController().signal,
      } as unknown as Request;
      const answer = await within(handler(odd));
      assert.equal(answer.status, 400, url);
      assert.equal(await answer.text(), "the Host header is not a valid host[:port]\n", url);
    }
  });

  test("answers the subscriptions API and the dashboard's figures whose client left during the token's check", async () => {
    start({ subscriptions: true, dashboard: true });
    const within = <T>(p: Promise<T>) =>
      Promise.race([p, sleep(5000).then(() => assert.fail("the handler never answered"))]);
    const token = await mintToken(SECRET, { subscribe: ["*"], admin: true });
    for (const path of [`${MERCURE_PATH}/subscriptions`, "/dashboard.json"]) {
      const leaving = new AbortController();
      const answer = handler(
        new Request(`${HUB}${path}`, {
          headers: { Authorization: `Bearer ${token}` },
          signal: leaving.signal,
        }),
      );
      queueMicrotask(() => leaving.abort());
      // Before: the promise never settled, holding the request.
      assert.equal((await within(answer)).status, 499, path);
    }
  });

  test("says in a HEAD answer how long the GET's body is, and rejects with clientAddress's own error", async () => {
    start();
    const get = await handler(new Request(`${HUB}/healthz`));
    const head = await handler(new Request(`${HUB}/healthz`, { method: "HEAD" }));
    assert.equal(head.body, null);
    assert.equal(head.headers.get("content-length"), String((await get.text()).length));
    await hub.close();
    start({
      clientAddress: () => {
        throw new Error("the app's own bug");
      },
    });
    await assert.rejects(handler(new Request(`${HUB}/healthz`)), /the app's own bug/);
  });

  test("answers a publish whose body stream fails with 400, as node:http does", async () => {
    start();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("topic=t&da"));
      },
      pull(controller) {
        controller.error(new Error("connection lost"));
      },
    });
    const request = new Request(`${HUB}${MERCURE_PATH}`, {
      method: "POST",
      body,
      duplex: "half",
      headers: {
        Authorization: `Bearer ${await publisher()}`,
        "Content-Type": "application/x-www-form-urlencoded",
      },
    } as RequestInit);
    const answer = await handler(request);
    assert.equal(answer.status, 400);
    assert.equal(await answer.text(), "the request ended before its body was complete\n");
    assert.equal(hub.stats.published, 0);
  });

  test("publishes, streams the update to a subscriber, and resumes after Last-Event-ID", async () => {
    start();
    const live = await handler(new Request(`${HUB}${MERCURE_PATH}?topic=chat`));
    assert.equal(live.status, 200);
    assert.equal(live.headers.get("content-type"), "text/event-stream");
    const reader = (live.body as ReadableStream<Uint8Array>).getReader();
    assert.equal(await readUntil(reader, (t) => t === ":\n"), ":\n");
    const published = await handler(
      publishRequest(HUB, await publisher(), { topic: "chat", data: "a\nb" }),
    );
    assert.equal(published.status, 200);
    assert.equal(published.headers.get("content-type"), "text/plain; charset=utf-8");
    const id = await published.text();
    const frame = `id: ${id}\ndata: a\ndata: b\n\n`;
    assert.equal(await readUntil(reader, (t) => t.length >= frame.length), frame);
    await reader.cancel();

    const next = await (
      await handler(publishRequest(HUB, await publisher(), { topic: "chat", data: "c" }))
    ).text();
    const resumed = await handler(
      new Request(`${HUB}${MERCURE_PATH}?topic=chat`, { headers: { "Last-Event-ID": id } }),
    );
    assert.equal(resumed.headers.get("last-event-id"), id);
    const expected = `:\nid: ${next}\ndata: c\n\n`;
    const again = (resumed.body as ReadableStream<Uint8Array>).getReader();
    assert.equal(await readUntil(again, (t) => t.length >= expected.length), expected);
    await again.cancel();
  });

  test("answers refusals with the node:http handler's statuses, challenges and reasons", async () => {
    start({ anonymous: false });
    const anonymous = await handler(new Request(`${HUB}${MERCURE_PATH}?topic=chat`));
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get("www-authenticate"), "Bearer");
    assert.equal(await anonymous.text(), "a subscriber token is required\n");
    const forged = await handler(publishRequest(HUB, "not.a.token", { topic: "chat" }));
    assert.equal(forged.status, 401);
    assert.equal(forged.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
    const noTopic = await handler(new Request(`${HUB}${MERCURE_PATH}`));
    assert.equal(noTopic.status, 400);
    assert.equal(await noTopic.text(), "at least one topic parameter is required\n");
    const text = await handler(
      new Request(`${HUB}${MERCURE_PATH}`, {
        method: "POST",
        body: "topic=chat",
        headers: { Authorization: `Bearer ${await publisher()}`, "Content-Type": "text/plain" },
      }),
    );
    assert.equal(text.status, 415);
    const put = await handler(new Request(`${HUB}${MERCURE_PATH}`, { method: "PUT" }));
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, POST, OPTIONS");
    assert.equal((await handler(new Request(`${HUB}/nowhere`))).status, 404);
    assert.equal(await (await handler(new Request(`${HUB}/healthz`))).text(), "ok\n");
  });

  test("refuses a body past maxBodyBytes without holding it", async () => {
    start({ maxBodyBytes: 64 });
    const big = await handler(
      publishRequest(HUB, await publisher(), { topic: "chat", data: "x".repeat(1000) }),
    );
    assert.equal(big.status, 413);
    assert.equal(await big.text(), "request body is larger than 64 bytes\n");
  });

  test("serves the subscriptions API and the protected resource metadata", async () => {
    start({ subscriptions: true, jwtAudience: `${HUB}${MERCURE_PATH}` });
    const live = await handler(
      new Request(`${HUB}${MERCURE_PATH}?topic=chat`, {
        headers: { Authorization: `Bearer ${await subscriber()}` },
      }),
    );
    const list = await handler(
      new Request(`${HUB}${MERCURE_PATH}/subscriptions`, {
        headers: { Authorization: `Bearer ${await subscriber()}` },
      }),
    );
    assert.equal(list.status, 200);
    assert.equal(list.headers.get("content-type"), "application/ld+json");
    const body = (await list.json()) as { subscriptions: { topic: string; active: boolean }[] };
    assert.deepEqual(
      body.subscriptions.map((s) => [s.topic, s.active]),
      [["chat", true]],
    );
    await live.body?.cancel();
    const metadata = await handler(
      new Request(`${HUB}/.well-known/oauth-protected-resource${MERCURE_PATH}`),
    );
    assert.equal(
      ((await metadata.json()) as { resource: string }).resource,
      `${HUB}${MERCURE_PATH}`,
    );
    const head = await handler(new Request(`${HUB}/healthz`, { method: "HEAD" }));
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
  });

  test("answers a CORS preflight from an allowed origin", async () => {
    start({ corsOrigins: ["https://app.test"] });
    const preflight = await handler(
      new Request(`${HUB}${MERCURE_PATH}`, {
        method: "OPTIONS",
        headers: { Origin: "https://app.test" },
      }),
    );
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "https://app.test");
  });

  test("ends the subscription when the request's signal aborts", async () => {
    start();
    const leave = new AbortController();
    await handler(new Request(`${HUB}${MERCURE_PATH}?topic=chat`, { signal: leave.signal }));
    assert.equal(hub.stats.subscribers, 1);
    const gone = once(hub, "disconnect");
    leave.abort();
    assert.equal((await gone)[1], "client");
  });

  test("refuses options and arguments it cannot use, with a CrierError", async () => {
    start();
    const invalid = (err: unknown) => isCrierError(err, "CRIER_ERR_INVALID_OPTION");
    assert.throws(() => createFetchHandler(undefined as never), invalid);
    assert.throws(() => createFetchHandler({ hub, routes: {} } as never), invalid);
    assert.throws(() => createFetchHandler({ hub, maxSubscribersPerIp: 2 }), invalid);
    assert.throws(() => createFetchHandler({ hub, clientAddress: "1.2.3.4" as never }), invalid);
    await assert.rejects(handler({ url: "/x" } as unknown as Request), invalid);
  });

  test("limits subscriptions per client address given by clientAddress", async () => {
    hub = createHub({ keepAliveMs: 0 });
    handler = createFetchHandler({
      hub,
      anonymous: true,
      maxSubscribersPerIp: 1,
      clientAddress: (request) => request.headers.get("x-test-client") ?? undefined,
    });
    const from = (client: string) =>
      handler(
        new Request(`${HUB}${MERCURE_PATH}?topic=chat`, { headers: { "X-Test-Client": client } }),
      );
    const first = await from("10.0.0.1");
    assert.equal(first.status, 200);
    assert.equal((await from("10.0.0.1")).status, 429);
    const other = await from("10.0.0.2");
    assert.equal(other.status, 200);
    await first.body?.cancel();
    await other.body?.cancel();
  });
});

// Every answer that is not a stream, asked of both handlers: same status, same headers that
// carry meaning, same body.
describe("createFetchHandler answers as createHandler does", () => {
  test("for refusals, the subscriptions API, metadata, CORS and the plain routes", async () => {
    const options = {
      publisherKey: SECRET,
      subscriberKey: SECRET,
      subscriptions: true,
      jwtAudience: "https://hub.test/.well-known/mercure",
      corsOrigins: ["https://app.test"],
      maxBodyBytes: 64,
      anonymous: false,
    };
    const node = await startHub({ keepAliveMs: 0 }, options);
    const fetchHub = createHub({ keepAliveMs: 0 });
    const handler = createFetchHandler({ hub: fetchHub, ...options });
    const base = `http://127.0.0.1:${node.port}`;
    const publisherToken = `Bearer ${await publisher()}`;
    const subscriberToken = `Bearer ${await subscriber()}`;
    const form = "application/x-www-form-urlencoded";
    const cases: [string, RequestInit][] = [
      [`${MERCURE_PATH}?topic=chat`, {}],
      [MERCURE_PATH, { headers: { Authorization: subscriberToken } }],
      [`${MERCURE_PATH}?matchx=a`, {}],
      [`${MERCURE_PATH}?topic=chat&authorization=x`, {}],
      [MERCURE_PATH, { method: "POST", body: "topic=chat", headers: { "Content-Type": form } }],
      [
        MERCURE_PATH,
        {
          method: "POST",
          body: "topic=chat",
          headers: { Authorization: "Bearer x.y.z", "Content-Type": form },
        },
      ],
      [
        MERCURE_PATH,
        {
          method: "POST",
          body: "data=1",
          headers: { Authorization: publisherToken, "Content-Type": form },
        },
      ],
      [
        MERCURE_PATH,
        {
          method: "POST",
          body: "topic=*",
          headers: { Authorization: publisherToken, "Content-Type": form },
        },
      ],
      [
        MERCURE_PATH,
        {
          method: "POST",
          body: `topic=a&data=${"x".repeat(100)}`,
          headers: { Authorization: publisherToken, "Content-Type": form },
        },
      ],
      [
        MERCURE_PATH,
        {
          method: "POST",
          body: "topic=a",
          headers: { Authorization: publisherToken, "Content-Type": "text/plain" },
        },
      ],
      [MERCURE_PATH, { method: "DELETE" }],
      [MERCURE_PATH, { method: "OPTIONS", headers: { Origin: "https://app.test" } }],
      [MERCURE_PATH, { method: "OPTIONS", headers: { Origin: "https://evil.test" } }],
      [`${MERCURE_PATH}/subscriptions`, {}],
      [`${MERCURE_PATH}/subscriptions`, { headers: { Authorization: subscriberToken } }],
      [
        `${MERCURE_PATH}/subscriptions/nothing-here`,
        { headers: { Authorization: subscriberToken } },
      ],
      [
        `${MERCURE_PATH}/subscriptions`,
        { method: "POST", headers: { Authorization: subscriberToken } },
      ],
      ["/.well-known/oauth-protected-resource/.well-known/mercure", {}],
      ["/healthz", {}],
      ["/readyz", {}],
      ["/", {}],
      ["/nowhere", {}],
    ];
    const meaningful = [
      "content-type",
      "www-authenticate",
      "allow",
      "retry-after",
      "access-control-allow-origin",
      "link",
      "etag",
      "cache-control",
    ];
    try {
      for (const [path, init] of cases) {
        const viaNode = await fetch(`${base}${path}`, init);
        const viaFetch = await handler(new Request(`${base}${path}`, init));
        const what = `${init.method ?? "GET"} ${path}`;
        assert.equal(viaFetch.status, viaNode.status, what);
        for (const name of meaningful) {
          assert.equal(viaFetch.headers.get(name), viaNode.headers.get(name), `${what}: ${name}`);
        }
        assert.equal(await viaFetch.text(), await viaNode.text(), what);
      }
    } finally {
      await node.close();
      await fetchHub.close();
    }
  });
});

// The same scenario against a real server on each runtime: subscribe, publish, see the
// subscription in the API, leave, publish more, resume; and an EventSource on Node.
const RUNTIMES = runtimes(FIXTURE);

async function publishOver(url: string, data: string): Promise<string> {
  const response = await fetch(publishRequest(url, await publisher(), { topic: "chat", data }));
  assert.equal(response.status, 200);
  return response.text();
}

async function activeSubscriptions(url: string): Promise<number> {
  const response = await fetch(`${url}${MERCURE_PATH}/subscriptions`, {
    headers: { Authorization: `Bearer ${await subscriber()}` },
  });
  assert.equal(response.status, 200);
  return ((await response.json()) as { subscriptions: unknown[] }).subscriptions.length;
}

describe("createFetchHandler on a real server", () => {
  for (const [runtime, command] of Object.entries(RUNTIMES)) {
    test(`${runtime}: subscribes, publishes, lists, notices the client leave and resumes`, async (t) => {
      if (runtime !== "node" && !available(command[0])) {
        if (process.env.CI === "true") assert.fail(`${runtime} is not on PATH, and CI needs it`);
        t.skip(
          `${runtime} is not on PATH (install it with npm install ${runtime} in a folder outside the project)`,
        );
        return;
      }
      const { child, url } = await startServer(command);
      try {
        const leave = new AbortController();
        const live = await fetch(`${url}${MERCURE_PATH}?topic=chat`, { signal: leave.signal });
        assert.equal(live.status, 200);
        assert.equal(live.headers.get("content-type"), "text/event-stream");
        const reader = (live.body as ReadableStream<Uint8Array>).getReader();
        assert.equal(await readUntil(reader, (text) => text === ":\n"), ":\n");
        const one = await publishOver(url, "one");
        const frame = `id: ${one}\ndata: one\n\n`;
        assert.equal(await readUntil(reader, (text) => text.length >= frame.length), frame);
        assert.equal(await activeSubscriptions(url), 1);

        leave.abort();
        while ((await activeSubscriptions(url)) > 0) await sleep(20);
        const two = await publishOver(url, "two");
        const three = await publishOver(url, "three");
        const resumed = await fetch(`${url}${MERCURE_PATH}?topic=chat`, {
          headers: { "Last-Event-ID": one },
        });
        assert.equal(resumed.headers.get("last-event-id"), one);
        const expected = `:\nid: ${two}\ndata: two\n\nid: ${three}\ndata: three\n\n`;
        const again = (resumed.body as ReadableStream<Uint8Array>).getReader();
        assert.equal(await readUntil(again, (text) => text.length >= expected.length), expected);
        await again.cancel();

        const refused = await fetch(publishRequest(url, "not.a.token", { topic: "chat" }));
        assert.equal(refused.status, 401);
        assert.equal(refused.headers.get("www-authenticate"), 'Bearer error="invalid_token"');

        if (runtime === "node") {
          // The browser's client: EventSource, through the same bridge.
          const source = new EventSource(`${url}${MERCURE_PATH}?topic=chat`);
          try {
            await once(source, "open");
            const received = once(source, "message");
            const four = await publishOver(url, "four");
            const [event] = (await received) as [MessageEvent];
            assert.deepEqual([event.lastEventId, event.data], [four, "four"]);
          } finally {
            source.close();
          }
        }
      } finally {
        child.kill();
        await once(child, "exit");
      }
    });
  }
});
