/**
 * End to end in a real browser: Debian's Chromium, driven by playwright-core, runs the native
 * EventSource in a page served by the hub itself (same origin, so no CORS in the way).
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`). Without it the suite is skipped,
 * except under CI=true, where it fails.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { mintAccessToken, mintToken } from "../src/mercure/tokens/mint.ts";
import type { Subscription } from "../src/subscriber.ts";
import { CHROMIUM, CI, chromiumMissing, chromiumSkip, launchChromium } from "./chromium.ts";
import { publish, SECRET, startHub, type TestHub } from "./helpers.ts";
import { AUDIENCE, ISSUER } from "./tokens.ts";

const missing = chromiumMissing;
const skip = chromiumSkip;

/** What the page records for each named EventSource. */
interface Received {
  readonly data: string;
  readonly id: string;
}

/** The page's globals used here (the test's tsconfig has no DOM types). */
interface PageGlobals {
  EventSource: new (
    url: string,
  ) => {
    onmessage: ((event: { data: string; lastEventId: string }) => void) | null;
    addEventListener(type: "open" | "error", listener: () => void): void;
    close(): void;
  };
  location: { origin: string };
  received: Record<string, Received[]>;
  opens: Record<string, number>;
}

// Under CI a missing browser is a failure, never a silent skip.
test("finds Chromium for the browser tests", { skip: !CI && "only checked under CI=true" }, () => {
  assert.ok(!missing, `CI needs ${CHROMIUM}: apt-get install -y chromium`);
});

describe("the hub in a real browser", { skip }, () => {
  let browser: Browser;
  let t: TestHub;
  let page: Page;

  before(async () => {
    browser = await launchChromium();
  });

  after(() => browser?.close());

  beforeEach(async () => {
    t = await startHub({ keepAliveMs: 0 }, { jwtAudience: AUDIENCE, jwtIssuer: ISSUER });
    page = await browser.newPage();
    await page.goto(`${new URL(t.url).origin}/`);
  });

  afterEach(async () => {
    await page.close();
    await t.close();
  });

  /** Opens a named EventSource in the page; resolves once it is open. */
  function listen(name: string, params: [string, string][]): Promise<void> {
    return page.evaluate(
      ([name, params]) => {
        const g = globalThis as unknown as PageGlobals;
        g.received ??= {};
        g.opens ??= {};
        const url = new URL("/.well-known/mercure", g.location.origin);
        for (const [key, value] of params) url.searchParams.append(key, value);
        const source = new g.EventSource(url.href);
        g.received[name] = [];
        g.opens[name] = 0;
        source.onmessage = (event) =>
          g.received[name]?.push({ data: event.data, id: event.lastEventId });
        return new Promise<void>((resolve, reject) => {
          source.addEventListener("open", () => {
            g.opens[name] = (g.opens[name] ?? 0) + 1;
            resolve();
          });
          source.addEventListener("error", () => reject(new Error(`EventSource ${name} failed`)));
        });
      },
      [name, params] as const,
    );
  }

  /** Waits until the page's source `name` has `n` messages, and returns them. */
  async function received(name: string, n: number): Promise<Received[]> {
    await page.waitForFunction(
      ([name, n]) => ((globalThis as unknown as PageGlobals).received[name]?.length ?? 0) >= n,
      [name, n] as const,
      { timeout: 10_000 },
    );
    return page.evaluate(
      (name) => (globalThis as unknown as PageGlobals).received[name] ?? [],
      name,
    );
  }

  const opens = (name: string) =>
    page.evaluate((name) => (globalThis as unknown as PageGlobals).opens[name] ?? 0, name);

  test("lets a page on another origin read where its resume started: earliest", async () => {
    // A page of an application on its own origin (the hub's home page may connect to no other).
    const app = createServer((_, res) => {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end("<!doctype html><title>app</title>");
    });
    app.listen(0, "127.0.0.1");
    await once(app, "listening");
    const appOrigin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    const other = await startHub({ keepAliveMs: 0 }, { corsOrigins: [appOrigin] });
    try {
      await page.goto(`${appOrigin}/`);
      const hubUrl = other.url;
      const headers = await page.evaluate(async (hubUrl) => {
        const g = globalThis as unknown as {
          fetch(url: string): Promise<{
            status: number;
            headers: { get(name: string): string | null };
            body: { cancel(): Promise<void> };
          }>;
        };
        const response = await g.fetch(`${hubUrl}?topic=a&lastEventID=unknown-id`);
        await response.body.cancel();
        return {
          status: response.status,
          last: response.headers.get("last-event-id"),
          mercure: response.headers.get("mercure-last-event-id"),
        };
      }, hubUrl);
      assert.deepEqual(headers, { status: 200, last: "earliest", mercure: "earliest" });
    } finally {
      await other.close();
      app.close();
    }
  });

  test("serves its home page as one self-contained HTML document", async () => {
    const requests: string[] = [];
    page.on("request", (request) => requests.push(request.url()));
    const response = await page.goto(`${new URL(t.url).origin}/`);
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()["content-type"] ?? "", /^text\/html/);
    assert.equal(await page.title(), "Crier hub");
    assert.deepEqual(requests, [`${new URL(t.url).origin}/`]);
  });

  test("delivers data with a blank line and leading spaces, and its id, intact", async () => {
    await listen("multi", [["topic", "https://example.com/multi"]]);
    const data = "first line\n\n   indented\n\ttab\n  last ";
    const given = await publish(
      t.url,
      { topic: "https://example.com/multi", data, id: "urn:uuid:6a3e-given" },
      t.publisherToken,
    );
    const generated = await publish(
      t.url,
      { topic: "https://example.com/multi", data: " x" },
      t.publisherToken,
    );
    assert.deepEqual(await received("multi", 2), [
      { data, id: given.body },
      { data: " x", id: generated.body },
    ]);
    assert.equal(given.body, "urn:uuid:6a3e-given");
  });

  // [spec, draft-08] a subscriber may listen to all books via the routing matcher
  // `match_urlpattern=https://example.com/books/:id`
  test("delivers to a page subscribed with match_urlpattern what a draft-08 access token publishes", async () => {
    await listen("drafted", [["match_urlpattern", "https://example.com/books/:id"]]);
    const publisher = await mintAccessToken(SECRET, {
      audience: AUDIENCE,
      issuer: ISSUER,
      publish: [{ match: "https://example.com/books/:id", match_type: "urlpattern" }],
    });
    const refused = await publish(
      t.url,
      { topic: "https://example.com/authors/1", data: "no" },
      publisher,
    );
    assert.equal(refused.status, 403);
    const sent = await publish(
      t.url,
      { topic: "https://example.com/books/1", data: "book 1" },
      publisher,
    );
    assert.equal(sent.status, 200);
    assert.deepEqual(await received("drafted", 1), [{ data: "book 1", id: sent.raw }]);
  });

  // [spec, v0.x] url.searchParams.append('topic', 'https://example.com/bar/{id}');
  // [spec, draft-08] url.searchParams.append('match_urlpattern', 'https://example.com/bar/:id');
  test("matches URI-template and URL-pattern selectors as the spec's examples do", async () => {
    await listen("template", [["topic", "https://example.com/books/{id}"]]);
    await listen("pattern", [["match_urlpattern", "https://example.com/books/:id"]]);
    await listen("exact", [["match", "https://example.com/books/{id}"]]);
    const topics = [
      "https://example.com/books/1",
      "https://example.com/books/1/reviews",
      "https://example.com/authors/1",
      "https://example.com/Books/2",
      "https://example.org/books/3",
      "https://example.com/books/4",
    ];
    for (const topic of topics) await publish(t.url, { topic, data: topic }, t.publisherToken);
    // A last update every source selects: anything skipped before it was skipped for good.
    await publish(
      t.url,
      { topic: "https://example.com/books/{id}", data: "literal" },
      t.publisherToken,
    );
    const matched = ["https://example.com/books/1", "https://example.com/books/4", "literal"];
    assert.deepEqual(
      (await received("template", 3)).map((e) => e.data),
      matched,
    );
    assert.deepEqual(
      (await received("pattern", 3)).map((e) => e.data),
      matched,
    );
    assert.deepEqual(
      (await received("exact", 1)).map((e) => e.data),
      ["literal"],
    );
  });

  test("never delivers a private update to an anonymous page, and does deliver the next public one", async () => {
    await listen("anonymous", [["topic", "https://example.com/secret"]]);
    const token = await mintToken(SECRET, { subscribe: ["https://example.com/secret"] });
    await page
      .context()
      .addCookies([{ name: "mercureAuthorization", value: token, url: new URL(t.url).origin }]);
    await listen("authorized", [["topic", "https://example.com/secret"]]);
    const secret = await publish(
      t.url,
      { topic: "https://example.com/secret", data: "private", private: "on" },
      t.publisherToken,
    );
    const open = await publish(
      t.url,
      { topic: "https://example.com/secret", data: "public" },
      t.publisherToken,
    );
    assert.deepEqual(await received("anonymous", 1), [{ data: "public", id: open.body }]);
    assert.deepEqual(await received("authorized", 2), [
      { data: "private", id: secret.body },
      { data: "public", id: open.body },
    ]);
  });

  for (const [how, drop] of [
    [
      "the subscription is closed",
      (subscriptions: Subscription[]) => subscriptions.at(-1)?.close(),
    ],
    ["its socket is destroyed", () => t.server.closeAllConnections()],
  ] as const) {
    test(`reconnects by itself after ${how} and receives everything published meanwhile`, async () => {
      const subscriptions: Subscription[] = [];
      t.hub.on("connect", (subscription) => subscriptions.push(subscription));
      await listen("feed", [["topic", "https://example.com/feed"]]);
      // A short reconnection delay, so the test does not wait the browser's default.
      await t.hub.publish({ topics: "https://example.com/feed", data: "one", retry: 100 });
      await received("feed", 1);
      drop(subscriptions);
      // Published while the page is disconnected: only a resume with Last-Event-ID brings them.
      await t.hub.publish({ topics: "https://example.com/feed", data: "two" });
      await t.hub.publish({ topics: "https://example.com/feed", data: "three" });
      await page.waitForFunction(
        () => ((globalThis as unknown as PageGlobals).opens.feed ?? 0) >= 2,
        undefined,
        { timeout: 10_000 },
      );
      await t.hub.publish({ topics: "https://example.com/feed", data: "four" });
      const events = await received("feed", 4);
      assert.deepEqual(
        events.map((e) => e.data),
        ["one", "two", "three", "four"],
      );
      assert.equal(new Set(events.map((e) => e.id)).size, 4);
      assert.equal(await opens("feed"), 2);
      assert.equal(subscriptions.length, 2);
    });
  }
});
