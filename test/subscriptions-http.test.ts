import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { SignJWT } from "jose";
import type { Update } from "../src/update.ts";
import {
  openStream,
  publish,
  SECRET,
  type StreamClient,
  startHub,
  type TestHub,
  until,
} from "./helpers.ts";
import { AUDIENCE, accessToken, ISSUER } from "./tokens.ts";

const S = "/.well-known/mercure/subscriptions";
const V0_EVENTS = `${S}/{topic}/{subscriber}`;
const enc = encodeURIComponent;
const DETAIL = "https://mercure.rocks/authorization-detail";

/** A subscriber token with `mercure.subscribe` and, optionally, `mercure.payload`. */
function token(subscribe: string[], payload?: unknown): Promise<string> {
  const mercure = payload === undefined ? { subscribe } : { subscribe, payload };
  return new SignJWT({ mercure })
    .setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(SECRET));
}

/** A draft-08 access token granting subscribe on each URL pattern of `patterns`. */
function accessTokenFor(patterns: string[], payload?: Record<string, unknown>): Promise<string> {
  const topics = patterns.map((match) => ({ match, match_type: "urlpattern" }));
  const detail = { type: DETAIL, actions: ["subscribe"], topics };
  return accessToken([payload === undefined ? detail : { ...detail, payload }], SECRET);
}

const bearer = (jwt: string) => ({ Authorization: `Bearer ${jwt}` });

async function getJson(url: string, jwt?: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    headers: jwt === undefined ? headers : { ...bearer(jwt), ...headers },
  });
  const text = await res.text();
  const type = res.headers.get("content-type") ?? "";
  return {
    status: res.status,
    headers: res.headers,
    body: type.includes("json") ? JSON.parse(text) : text,
  };
}

describe("active subscriptions over HTTP", () => {
  let t: TestHub;
  let origin: string;
  const streams: StreamClient[] = [];
  const ids: string[] = [];

  beforeEach(async () => {
    t = await startHub(
      { keepAliveMs: 0 },
      {
        subscriptions: true,
        jwtAudience: AUDIENCE,
        jwtIssuer: ISSUER,
        corsOrigins: ["https://app.example"],
      },
    );
    origin = new URL(t.url).origin;
    ids.length = 0;
    t.hub.on("connect", (subscription) => ids.push(subscription.id));
  });

  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await t.close();
  });

  async function open(query: string, headers: Record<string, string> = {}): Promise<StreamClient> {
    const s = await openStream(`${t.url}?${query}`, headers);
    streams.push(s);
    assert.equal(s.status, 200, `subscription ${query} refused`);
    return s;
  }

  test("publishes a private v0.x subscription event when a subscription starts and when it ends", async () => {
    const watcher = await open(`topic=${enc(V0_EVENTS)}`, bearer(await token([V0_EVENTS])));
    const jwt = await token(["https://example.com/books/{id}"], { name: "reader" });
    const reader = await open(`topic=${enc("https://example.com/books/{id}")}`, bearer(jwt));
    const subscriber = ids[1] as string;
    assert.match(subscriber, /^urn:uuid:[0-9a-f-]{36}$/);
    const id = `${S}/${enc("https://example.com/books/{id}")}/${enc(subscriber)}`;
    // The watcher's own subscription matches its selector too: it comes first.
    const [own, started] = await watcher.waitForEvents(2);
    assert.equal(JSON.parse(own?.data ?? "").subscriber, ids[0]);
    assert.deepEqual(JSON.parse(started?.data ?? ""), {
      "@context": "https://mercure.rocks/",
      id,
      type: "Subscription",
      topic: "https://example.com/books/{id}",
      subscriber,
      active: true,
      payload: { name: "reader" },
    });
    reader.close();
    const [, , ended] = await watcher.waitForEvents(3);
    assert.equal(JSON.parse(ended?.data ?? "").active, false);
    assert.equal(JSON.parse(ended?.data ?? "").id, id);
    assert.ok(ended?.id !== started?.id);
  });

  // [spec, draft-08] The hub MUST dispatch subscription events with the update `type` field […]
  // set to the reserved value `mercure`. […] `type`: the fixed value `subscription`.
  // `match_type` […] `match` […] `payload`: the `payload` of the first `subscribe`
  // authorization detail whose `topics` matches the subscription's own matcher.
  test("publishes draft-08 subscription events: type mercure, one per selector, one subscriber id, each its own payload", async () => {
    const watcher = await open(
      `match_urlpattern=${enc(`${S}/exact/*`)}&match_urlpattern=${enc(`${S}/urlpattern/*`)}`,
      bearer(await accessTokenFor([`${S}/*`])),
    );
    const reader = await accessToken(
      [
        {
          type: DETAIL,
          actions: ["subscribe"],
          topics: [{ match: "https://example.com/bar/:id", match_type: "urlpattern" }],
          payload: { for: "bar" },
        },
        {
          type: DETAIL,
          actions: ["subscribe"],
          topics: [{ match: "*" }],
          payload: { for: "rest" },
        },
      ],
      SECRET,
    );
    await open(
      `match=${enc("https://example.com/foo")}&match_urlpattern=${enc("https://example.com/bar/:id")}`,
      bearer(reader),
    );
    const subscriber = ids[1] as string;
    const events = (await watcher.waitForEvents(4)).slice(2);
    assert.deepEqual(
      events.map((e) => e.event),
      ["mercure", "mercure"],
    );
    const foo = `${S}/exact/${enc("https://example.com/foo")}/${enc(subscriber)}`;
    const bar = `${S}/urlpattern/${enc("https://example.com/bar/:id")}/${enc(subscriber)}`;
    assert.deepEqual(
      events.map((e) => e.data),
      [
        JSON.stringify({
          id: foo,
          type: "subscription",
          match_type: "exact",
          match: "https://example.com/foo",
          subscriber,
          active: true,
          payload: { for: "rest" },
        }),
        JSON.stringify({
          id: bar,
          type: "subscription",
          match_type: "urlpattern",
          match: "https://example.com/bar/:id",
          subscriber,
          active: true,
          payload: { for: "bar" },
        }),
      ],
    );
  });

  test("keeps v0.x subscription events without an event type", async () => {
    const watcher = await open(`topic=${enc(V0_EVENTS)}`, bearer(await token([V0_EVENTS])));
    const [own] = await watcher.waitForEvents(1);
    assert.equal(own?.event, undefined);
    assert.equal(JSON.parse(own?.data ?? "")["@context"], "https://mercure.rocks/");
  });

  test("never sends subscription events to an anonymous subscriber or to a token that does not cover them", async () => {
    const anonymous = await open("topic=*");
    const other = await open("topic=*", bearer(await token(["https://example.com/other"])));
    await open("topic=https://example.com/watched");
    const marker = await publish(
      t.url,
      { topic: "https://example.com/marker", data: "public" },
      t.publisherToken,
    );
    for (const s of [anonymous, other]) {
      const [first] = await s.waitForEvents(1);
      assert.equal(first?.id, marker.body);
      assert.equal(first?.data, "public");
    }
  });

  test("announces the end of every subscription when the hub shuts down", async () => {
    const published: Update[] = [];
    t.hub.on("publish", (update) => published.push(update));
    await open("topic=a&topic=b");
    await t.close();
    const ended = published.map((u) => JSON.parse(u.data)).filter((d) => d.active === false);
    assert.deepEqual(
      ended.map((d) => d.topic),
      ["a", "b"],
    );
    assert.ok(published.every((u) => u.private));
  });

  test("lists all subscriptions with lastEventID, earliest before any event", async () => {
    const all = await token([`${S}`]);
    const empty = await getJson(`${origin}${S}`, all);
    assert.equal(empty.status, 200);
    assert.equal(empty.headers.get("content-type"), "application/ld+json");
    assert.deepEqual(empty.body, {
      "@context": "https://mercure.rocks/",
      id: S,
      type: "Subscriptions",
      lastEventID: "earliest",
      subscriptions: [],
    });
    await open("topic=https://example.com/a&match=https://example.com/b");
    const last = await publish(
      t.url,
      { topic: "https://example.com/a", data: "x" },
      t.publisherToken,
    );
    const listed = await getJson(`${origin}${S}`, all);
    assert.equal(listed.body.lastEventID, last.body);
    assert.deepEqual(
      listed.body.subscriptions.map((s: Record<string, unknown>) => [s.topic, s.match, s.active]),
      [
        ["https://example.com/a", undefined, true],
        [undefined, "https://example.com/b", true],
      ],
    );
    assert.equal(listed.body.subscriptions[0]["@context"], undefined);
    assert.equal(listed.headers.get("etag"), `"${last.body}"`);
    // An id an entity-tag cannot hold as it is (a quote, a space) is given as its digest.
    await publish(t.url, { topic: "https://example.com/a", id: 'say "hi"' }, t.publisherToken);
    const quoted = (await getJson(`${origin}${S}`, all)).headers.get("etag") ?? "";
    assert.match(quoted, /^"[\x21\x23-\x7e]+"$/);
  });

  // [spec, draft-08] The web API MUST set the `Content-Type` HTTP header to `application/json`
  // […] every endpoint MUST carry the reconciliation cursor as a `last-event-id` target
  // attribute on the `rel="mercure"` Link header […] it MUST expose the `Link` response header
  // to them […] `type`: the fixed value `subscriptions`.
  test("answers a draft-08 token in the draft-08 shape: JSON, the cursor on the Link header, Link exposed to other origins", async () => {
    const jwt = await accessTokenFor([`${S}`, `${S}/*`]);
    const cors = { Origin: "https://app.example" };
    const empty = await getJson(`${origin}${S}`, jwt, cors);
    assert.equal(empty.status, 200);
    assert.equal(empty.headers.get("content-type"), "application/json");
    assert.equal(
      empty.headers.get("link"),
      '</.well-known/mercure>; rel="mercure"; last-event-id="earliest"; content-type="application/json"; type="mercure"',
    );
    assert.equal(empty.headers.get("access-control-expose-headers"), "Link");
    assert.deepEqual(empty.body, { id: S, type: "subscriptions", subscriptions: [] });
    await open(`match=${enc("https://example.com/b")}`);
    const last = await publish(t.url, { topic: "https://example.com/b" }, t.publisherToken);
    const listed = await getJson(`${origin}${S}`, jwt, cors);
    assert.equal(
      listed.headers.get("link"),
      `</.well-known/mercure>; rel="mercure"; last-event-id="${last.raw}"; content-type="application/json"; type="mercure"`,
    );
    assert.deepEqual(listed.body, {
      id: S,
      type: "subscriptions",
      subscriptions: [
        {
          id: `${S}/exact/${enc("https://example.com/b")}/${enc(ids[0] as string)}`,
          type: "subscription",
          match_type: "exact",
          match: "https://example.com/b",
          subscriber: ids[0],
          active: true,
        },
      ],
    });
    // A v0.x answer keeps its cursor in the body, and its Link as it was.
    const v0 = await getJson(`${origin}${S}`, await token([S]), cors);
    assert.equal(v0.headers.get("content-type"), "application/ld+json");
    assert.equal(v0.headers.get("link"), '</.well-known/mercure>; rel="mercure"');
    assert.equal(v0.headers.get("access-control-expose-headers"), null);
    assert.equal(v0.body.lastEventID, last.raw);
  });

  test("lets a browser on an allowed origin send its token in a header: preflight, then GET or HEAD", async () => {
    const ask = (from: string) =>
      fetch(`${origin}${S}/exact/${enc("https://example.com/b")}`, {
        method: "OPTIONS",
        headers: {
          Origin: from,
          "Access-Control-Request-Method": "GET",
          "Access-Control-Request-Headers": "authorization",
        },
      });
    const allowed = await ask("https://app.example");
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get("access-control-allow-origin"), "https://app.example");
    assert.equal(allowed.headers.get("access-control-allow-methods"), "GET, HEAD, OPTIONS");
    assert.match(allowed.headers.get("access-control-allow-headers") ?? "", /\bAuthorization\b/);
    assert.equal((await ask("https://evil.example")).status, 403);

    const jwt = await accessTokenFor([`${S}`, `${S}/*`]);
    const cors = { Origin: "https://app.example" };
    const got = await getJson(`${origin}${S}`, jwt, cors);
    const head = await fetch(`${origin}${S}`, {
      method: "HEAD",
      headers: { ...bearer(jwt), ...cors },
    });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    for (const name of ["content-type", "link", "access-control-allow-origin"]) {
      assert.equal(head.headers.get(name), got.headers.get(name), name);
    }
    const put = await fetch(`${origin}${S}`, { method: "PUT", headers: bearer(jwt) });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, HEAD, OPTIONS");
    assert.equal(await put.text(), "use GET to read subscriptions\n");
  });

  // [spec, draft-08] Hubs supporting this feature SHOULD advertise it with the
  // `mercure_subscriptions` metadata member
  test("advertises active subscriptions in its protected resource metadata", async () => {
    const res = await getJson(`${origin}/.well-known/oauth-protected-resource/.well-known/mercure`);
    assert.equal(res.status, 200);
    assert.equal(res.body.resource, AUDIENCE);
    assert.equal(res.body.mercure_subscriptions, true);
  });

  test("lists one selector's subscriptions in v0.x and draft-08 collections, and omits ended ones", async () => {
    const topic = "https://example.com/books/{id}";
    const first = await open(`topic=${enc(topic)}`);
    await open(`topic=${enc(topic)}&topic=other`);
    await open(`match=${enc("https://example.com/books/1")}`);
    const v0 = `${S}/${enc(topic)}`;
    const v8 = `${S}/exact/${enc("https://example.com/books/1")}`;
    const jwt = await token([`${S}/{topic}`, `${S}/{matchType}/{match}`]);
    const books = await getJson(`${origin}${v0}`, jwt);
    assert.equal(books.status, 200);
    assert.equal(books.body.id, v0);
    assert.equal(books.body.type, "Subscriptions");
    assert.deepEqual(
      books.body.subscriptions.map((s: Record<string, unknown>) => s.subscriber),
      [ids[0], ids[1]],
    );
    const exact = await getJson(`${origin}${v8}`, jwt);
    assert.equal(exact.headers.get("content-type"), "application/json");
    assert.equal(exact.body.type, "subscriptions");
    assert.deepEqual(
      exact.body.subscriptions.map((s: Record<string, unknown>) => [s.match_type, s.subscriber]),
      [["exact", ids[2]]],
    );
    const none = await getJson(`${origin}${S}/nobody`, jwt);
    assert.deepEqual(none.body.subscriptions, []);
    first.close();
    await until(
      async () => (await getJson(`${origin}${v0}`, jwt)).body.subscriptions.length === 1,
      "the ended subscription to leave the list",
    );
  });

  test("counts a selector given twice as one subscription", async () => {
    const dup = enc("https://example.com/dup");
    await open(`topic=${dup}&topic=${dup}&match=${dup}&match_exact=${dup}`);
    const jwt = await token([`${S}/{topic}`, `${S}/{matchType}/{match}`]);
    const v0 = await getJson(`${origin}${S}/${dup}`, jwt);
    const v8 = await getJson(`${origin}${S}/exact/${dup}`, jwt);
    assert.deepEqual(
      [v0.body.subscriptions.length, v8.body.subscriptions.length],
      [1, 1],
      "one v0.x and one draft-08 subscription, each listed once",
    );
  });

  test("answers one subscription as the event's document plus lastEventID, and 404 for an unknown one", async () => {
    const watcher = await open(`topic=${enc(V0_EVENTS)}`, bearer(await token([V0_EVENTS])));
    await open("topic=https://example.com/one");
    const [, event] = await watcher.waitForEvents(2);
    const id = `${S}/${enc("https://example.com/one")}/${enc(ids[1] as string)}`;
    const res = await getJson(`${origin}${id}`, await token([V0_EVENTS]));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/ld+json");
    assert.deepEqual(res.body, { ...JSON.parse(event?.data ?? ""), lastEventID: event?.id });
    const v8 = `${S}/exact/${enc("https://example.com/one")}/${enc(ids[1] as string)}`;
    assert.equal((await getJson(`${origin}${v8}`, await token(["*"]))).status, 404);
    // A draft-08 subscription is answered as its event's document, unchanged.
    await open(`match=${enc("https://example.com/two")}`);
    const mine = `${S}/exact/${enc("https://example.com/two")}/${enc(ids[2] as string)}`;
    const single = await getJson(`${origin}${mine}`, await token(["*"]));
    assert.equal(single.status, 200);
    assert.equal(single.headers.get("content-type"), "application/json");
    assert.deepEqual(single.body, {
      id: mine,
      type: "subscription",
      match_type: "exact",
      match: "https://example.com/two",
      subscriber: ids[2],
      active: true,
    });
    const unknown = `${S}/${enc("https://example.com/one")}/${enc("urn:uuid:nope")}`;
    assert.equal((await getJson(`${origin}${unknown}`, await token(["*"]))).status, 404);
    // A path that is not percent-encoded UTF-8 names nothing: refused, with the reason.
    for (const bad of [`${S}/%FF`, `${S}/exact/a%C3/sub`]) {
      const res = await fetch(`${origin}${bad}`, { headers: bearer(await token(["*"])) });
      assert.equal(res.status, 400, bad);
      assert.equal(await res.text(), "the subscriptions path is not percent-encoded UTF-8\n");
    }
  });

  test("answers 401 without a valid token and 403 when the claim does not cover the requested URL", async () => {
    await open("topic=https://example.com/one");
    const one = `${S}/${enc("https://example.com/one")}/${enc(ids[0] as string)}`;
    for (const path of [S, `${S}/${enc("https://example.com/one")}`, one]) {
      const none = await getJson(`${origin}${path}`);
      assert.equal(none.status, 401, path);
      assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.equal((await getJson(`${origin}${path}`, "not-a-jwt")).status, 401, path);
      const narrow = await getJson(`${origin}${path}`, await token(["https://example.com/one"]));
      assert.equal(narrow.status, 403, path);
      assert.equal((await getJson(`${origin}${path}`, await token(["*"]))).status, 200, path);
    }
    // The subscription-event template covers single subscriptions, not the collections.
    const events = await token([V0_EVENTS]);
    assert.equal((await getJson(`${origin}${one}`, events)).status, 200);
    assert.equal((await getJson(`${origin}${S}`, events)).status, 403);
  });

  test("resumes subscription events from the API's lastEventID without a gap", async () => {
    const jwt = await token(["*"]);
    const { lastEventID } = (await getJson(`${origin}${S}`, jwt)).body;
    await open("topic=https://example.com/late");
    const watcher = await open(
      `topic=${enc(V0_EVENTS)}&lastEventID=${enc(lastEventID)}`,
      bearer(jwt),
    );
    const [missed, own] = await watcher.waitForEvents(2);
    assert.equal(JSON.parse(missed?.data ?? "").topic, "https://example.com/late");
    assert.equal(JSON.parse(own?.data ?? "").subscriber, ids[1]);
  });
});

describe("active subscriptions switched off", () => {
  test("publishes no subscription event and answers 404 on the API", async () => {
    const t = await startHub({ keepAliveMs: 0 });
    const published: Update[] = [];
    t.hub.on("publish", (update) => published.push(update));
    const s = await openStream(`${t.url}?topic=x`);
    try {
      const res = await fetch(`${new URL(t.url).origin}${S}`, {
        headers: bearer(await token(["*"])),
      });
      assert.equal(res.status, 404);
      assert.deepEqual(published, []);
    } finally {
      s.close();
      await t.close();
    }
  });
});
