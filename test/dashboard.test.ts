/**
 * The live dashboard: its figures need the `admin` right (401 without a token, 403 without the
 * right), they move as the hub works, and the page shows them in Debian's Chromium, tails a
 * topic and publishes from its form.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, statSync } from "node:fs";
import { Agent, type IncomingMessage, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import type { RouteListener } from "../src/mercure/http/context.ts";
import { shutdown } from "../src/mercure/http/shutdown.ts";
import { mintAccessToken, mintToken } from "../src/mercure/tokens/mint.ts";
import type { DashboardSnapshot } from "../src/ops/dashboard.ts";
import { registerMetrics } from "../src/ops/metrics.ts";
import { chromiumSkip, launchChromium } from "./chromium.ts";
import {
  openStream,
  publish,
  SECRET,
  type StreamClient,
  startHub,
  type TestHub,
  until,
} from "./helpers.ts";
import { AUDIENCE, hmacWith, ISSUER } from "./tokens.ts";

const TOPIC = "https://example.com/dashboard/1";

async function figures(t: TestHub, token?: string): Promise<Response> {
  const headers: Record<string, string> =
    token === undefined ? {} : { Authorization: `Bearer ${token}` };
  return fetch(new URL("/dashboard.json", t.url), { headers });
}

describe("the dashboard's figures", () => {
  let t: TestHub;
  const streams: StreamClient[] = [];
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await t.close();
  });

  test("are refused without a token (401) and without the admin right (403)", async () => {
    t = await startHub({}, { dashboard: true, jwtAudience: AUDIENCE, jwtIssuer: ISSUER });
    const none = await figures(t);
    assert.equal(none.status, 401);
    // No token: a bare challenge, no error code (RFC 6750, as the Mercure routes answer).
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer resource_metadata="/);
    assert.match(await none.text(), /admin right/);
    const publisher = await figures(t, await mintToken(SECRET, { publish: ["*"] }));
    assert.equal(publisher.status, 403);
    assert.match(publisher.headers.get("www-authenticate") ?? "", /insufficient_scope/);
    // Only the JSON boolean grants the right.
    const text = await figures(t, hmacWith(SECRET, { mercure: { admin: "true" } }));
    assert.equal(text.status, 403);
    await text.arrayBuffer();
    const forged = await figures(
      t,
      await mintToken("another-secret-of-enough-length!!", { admin: true }),
    );
    assert.equal(forged.status, 401);
    await forged.arrayBuffer();
    assert.equal(
      (
        await figures(
          t,
          await mintAccessToken(SECRET, {
            audience: AUDIENCE,
            issuer: ISSUER,
            publish: [{ match: "*" }],
          }),
        )
      ).status,
      403,
    );
  });

  test("are served to a v0.x token with mercure.admin and to an access token with the admin action", async () => {
    t = await startHub({}, { dashboard: true, jwtAudience: AUDIENCE, jwtIssuer: ISSUER });
    const v0 = await figures(t, await mintToken(SECRET, { admin: true }));
    assert.equal(v0.status, 200);
    assert.match(v0.headers.get("content-type") ?? "", /^application\/json/);
    const snapshot = (await v0.json()) as DashboardSnapshot;
    assert.equal(snapshot.subscribers, 0);
    assert.equal(snapshot.backplane, "memory");
    const access = await figures(
      t,
      await mintAccessToken(SECRET, { audience: AUDIENCE, issuer: ISSUER, admin: true }),
    );
    assert.equal(access.status, 200);
    await access.arrayBuffer();
  });

  test("count subscribers, updates and the busiest topics as they happen", async () => {
    t = await startHub({}, { dashboard: true });
    const admin = await mintToken(SECRET, { admin: true });
    for (let i = 0; i < 3; i++)
      streams.push(await openStream(`${t.url}?topic=${encodeURIComponent(TOPIC)}`));
    for (let i = 0; i < 4; i++)
      await publish(t.url, { topic: TOPIC, data: `n${i}` }, t.publisherToken);
    await publish(t.url, { topic: "https://example.com/quiet", data: "x" }, t.publisherToken);
    await streams[0]?.waitForEvents(4);
    const snapshot = (await (await figures(t, admin)).json()) as DashboardSnapshot;
    assert.equal(snapshot.subscribers, 3);
    assert.equal(snapshot.published, 5);
    assert.deepEqual(snapshot.topics, [
      { topic: TOPIC, updates: 4 },
      { topic: "https://example.com/quiet", updates: 1 },
    ]);
  });

  test("leave the hub's own subscription events out of the busiest topics", async () => {
    t = await startHub({}, { dashboard: true, subscriptions: true });
    const admin = await mintToken(SECRET, { admin: true });
    for (let i = 0; i < 3; i++)
      streams.push(await openStream(`${t.url}?topic=${encodeURIComponent(TOPIC)}`));
    await publish(t.url, { topic: TOPIC, data: "x" }, t.publisherToken);
    await streams[0]?.waitForEvents(1);
    const snapshot = (await (await figures(t, admin)).json()) as DashboardSnapshot;
    assert.ok(snapshot.published >= 4, "the subscription events are published");
    assert.deepEqual(snapshot.topics, [{ topic: TOPIC, updates: 1 }]);
    assert.equal(snapshot.otherTopics, 0);
  });

  test("stream one snapshot at once and then one a second, as an event stream", async () => {
    t = await startHub({}, { dashboard: true });
    const admin = await mintToken(SECRET, { admin: true });
    const live = await openStream(new URL("/dashboard.json", t.url).href, {
      Authorization: `Bearer ${admin}`,
    });
    streams.push(live);
    assert.equal(live.status, 200);
    assert.match(String(live.headers["content-type"]), /^text\/event-stream/);
    const [first] = await live.waitForEvents(1);
    assert.equal((JSON.parse(first?.data ?? "") as DashboardSnapshot).subscribers, 0);
    streams.push(await openStream(`${t.url}?topic=${encodeURIComponent(TOPIC)}`));
    await live.waitForEvents(3, 5000);
    const latest = JSON.parse(live.events.at(-1)?.data ?? "") as DashboardSnapshot;
    assert.equal(latest.subscribers, 1);
    assert.ok(latest.series.length >= 1, "the chart's samples come with each snapshot");
  });

  test("end their event stream when the admin token expires, and at the connection lifetime", async () => {
    // Before: the stream ran until the client left, whatever the token said.
    const endsWithin = (stream: StreamClient, ms: number, what: string) =>
      Promise.race([
        stream.ended,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`still open ${ms} ms later: ${what}`)), ms).unref(),
        ),
      ]);
    t = await startHub({}, { dashboard: true });
    // `exp` is whole seconds: two seconds of life leave at least one second to connect.
    const admin = await mintToken(SECRET, { admin: true, ttlSeconds: 2 });
    const expiring = await openStream(new URL("/dashboard.json", t.url).href, {
      Authorization: `Bearer ${admin}`,
    });
    streams.push(expiring);
    assert.equal(expiring.status, 200);
    await endsWithin(expiring, 10_000, "an expired admin token's stream");
    const { exp } = JSON.parse(Buffer.from(admin.split(".")[1] ?? "", "base64url").toString()) as {
      exp: number;
    };
    assert.ok(Date.now() >= exp * 1000 - 50, "not before the token's exp");
    await t.close();

    t = await startHub({}, { dashboard: true, maxConnectionLifetimeMs: 300 });
    const lasting = await openStream(new URL("/dashboard.json", t.url).href, {
      Authorization: `Bearer ${await mintToken(SECRET, { admin: true })}`,
    });
    streams.push(lasting);
    await endsWithin(lasting, 10_000, "a stream past the connection lifetime");
  });

  test("send a figures stream asked for while the hub closes back to retry, not hold the close", async () => {
    t = await startHub({}, { dashboard: true });
    // A subscriber whose stream the close ends over two seconds: the hub is closing meanwhile.
    streams.push(await openStream(`${t.url}?topic=a`));
    const closing = t.hub.close({ spreadMs: 2000 });
    const res = await fetch(new URL("/dashboard.json", t.url), {
      headers: {
        Authorization: `Bearer ${await mintToken(SECRET, { admin: true })}`,
        Accept: "text/event-stream",
      },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    // Before: one snapshot, then nothing until the client left (a drain waited for it).
    assert.match(await res.text(), /^retry: \d+\n\n$/);
    await closing;
  });

  test("count at most maxTopics topics by name, and the rest as other topics", async () => {
    t = await startHub({}, { dashboard: { open: true, maxTopics: 2 } });
    for (const topic of ["https://a.example/1", "https://a.example/2", "https://a.example/3"]) {
      await publish(t.url, { topic, data: "x" }, t.publisherToken);
    }
    await publish(t.url, { topic: "https://a.example/1", data: "x" }, t.publisherToken);
    const snapshot = (await (await figures(t)).json()) as DashboardSnapshot;
    assert.deepEqual(snapshot.topics, [
      { topic: "https://a.example/1", updates: 2 },
      { topic: "https://a.example/2", updates: 1 },
    ]);
    assert.equal(snapshot.otherTopics, 1);
  });

  test("name a long topic by its first 256 characters", async () => {
    t = await startHub({}, { dashboard: { open: true } });
    const long = `https://a.example/${"x".repeat(100_000)}`;
    // A pair that the cut would split: the name stops before it.
    const pair = `https://b.example/${"y".repeat(256 - 19)}\u{1F600}tail`;
    for (const topic of [long, long, pair]) {
      assert.equal((await publish(t.url, { topic, data: "x" }, t.publisherToken)).status, 200);
    }
    const snapshot = (await (await figures(t)).json()) as DashboardSnapshot;
    assert.deepEqual(snapshot.topics, [
      { topic: `${long.slice(0, 256)}\u2026`, updates: 2 },
      { topic: `${pair.slice(0, 255)}\u2026`, updates: 1 },
    ]);
  });

  test("end its streams and their connections as the hub closes, not at the drain's deadline", async () => {
    t = await startHub({}, { dashboard: true });
    const agent = new Agent({ keepAlive: true });
    const req = request(new URL("/dashboard.json", t.url), {
      agent,
      headers: {
        Accept: "text/event-stream",
        Authorization: `Bearer ${await mintToken(SECRET, { admin: true })}`,
      },
    });
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      body += chunk;
    });
    await until(() => body.includes("\n\n"), "the first snapshot");
    let socketClosed = false;
    res.socket.once("close", () => {
      socketClosed = true;
    });
    // Before: the stream ended at the next sample, then its kept-alive connection held the
    // drain until its deadline.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      shutdown(t.server, t.hub, 60_000),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("the drain waited for the dashboard")), 10_000);
      }),
    ]);
    clearTimeout(timer);
    await until(() => socketClosed, "the connection closed");
    const last = body.trim().split("\n\n").pop() ?? "";
    assert.equal((JSON.parse(last.slice("data: ".length)) as DashboardSnapshot).closing, true);
    agent.destroy();
  });

  test("close its HTTP/1.1 connection when the hub closes, the server going on", async () => {
    t = await startHub({}, { dashboard: true });
    const agent = new Agent({ keepAlive: true });
    const req = request(new URL("/dashboard.json", t.url), {
      agent,
      headers: {
        Accept: "text/event-stream",
        Authorization: `Bearer ${await mintToken(SECRET, { admin: true })}`,
      },
    });
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    res.resume();
    let socketClosed = false;
    res.socket.once("close", () => {
      socketClosed = true;
    });
    await t.hub.close();
    // The server is not closed: only the stream's own end closes the connection.
    await until(() => socketClosed, "the connection closed");
    assert.equal(t.server.listening, true);
    agent.destroy();
  });

  test("answer HEAD / with the page's headers and refuse other methods on the figures", async () => {
    t = await startHub({}, { dashboard: true });
    const head = await fetch(new URL("/", t.url), { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.match(head.headers.get("content-security-policy") ?? "", /script-src 'sha256-/);
    const post = await fetch(new URL("/dashboard.json", t.url), { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET");
    await post.arrayBuffer();
  });

  test("are served without a token when open (dev mode), and not at all when off (the home page is)", async () => {
    t = await startHub({}, { dashboard: { open: true } });
    assert.equal((await figures(t)).status, 200);
    await t.close();
    t = await startHub();
    const off = await figures(t);
    assert.equal(off.status, 404);
    await off.arrayBuffer();
    const home = await fetch(new URL("/", t.url));
    assert.match(await home.text(), /<title>Crier hub<\/title>/);
    // HEAD answers what GET would, without the body.
    const head = await fetch(new URL("/", t.url), { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-type"), home.headers.get("content-type"));
    assert.equal(await head.text(), "");
  });
});

describe("the dashboard in a real browser", { skip: chromiumSkip }, () => {
  let browser: Browser;
  let t: TestHub;
  let page: Page;
  let closeMetrics: () => void;
  const errors: string[] = [];
  const streams: StreamClient[] = [];
  // The test's output folder: the screenshot is written there.
  const output = mkdtempSync(join(tmpdir(), "crier-dashboard-"));

  before(async () => {
    browser = await launchChromium();
  });
  after(() => browser?.close());

  beforeEach(async () => {
    errors.length = 0;
    // The metrics route goes on the hub's own server, as `--metrics` does.
    const routes: Record<string, RouteListener> = {};
    t = await startHub({}, { dashboard: true, routes });
    const metrics = registerMetrics({ hub: t.hub });
    routes["/metrics"] = metrics.handler;
    closeMetrics = () => metrics.close();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    page.on("pageerror", (err) => errors.push(err.message));
  });

  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await page.close();
    closeMetrics();
    await t.close();
  });

  const origin = () => new URL(t.url).origin;
  const text = async (selector: string) =>
    (await page.locator(selector).first().textContent()) ?? "";
  /** Waits until the text of `selector` passes `check`. */
  const shows = (selector: string, check: (text: string) => boolean, what: string) =>
    until(async () => check(await text(selector)), `${selector} to show ${what}`);
  const count = (s: string) => Number(s.replace(/,/g, ""));

  test("shows live figures to an admin, tails a topic and publishes from its form", async () => {
    const admin = await mintToken(SECRET, { admin: true, publish: ["*"], subscribe: ["*"] });
    const response = await page.goto(`${origin()}/#token=${admin}`);
    assert.equal(response?.status(), 200);
    assert.equal(await page.title(), "Crier dashboard");
    await shows("#status", (s) => s === "live", "live");
    assert.equal(await text("#subscribers"), "0");
    assert.equal(new URL(page.url()).hash, "", "the token leaves the address bar");

    const url = `${t.url}?topic=${encodeURIComponent(TOPIC)}`;
    for (let i = 0; i < 50; i += 10) {
      streams.push(...(await Promise.all(Array.from({ length: 10 }, () => openStream(url)))));
    }
    await shows("#subscribers", (s) => s === "50", "50 subscribers");
    const scraped = await (await fetch(new URL("/metrics", t.url))).text();
    assert.match(scraped, /^crier_subscribers 50$/m, "the page and /metrics agree");

    await page.fill("#tail-topic", TOPIC);
    await page.click("#tail-button");
    await shows("#tail", (s) => s.includes("tailing"), "the tail open");
    await page.fill("#publish-topic", TOPIC);
    await page.fill("#publish-data", "hello from the form");
    await page.click("#publish-form button");
    await shows("#publish-result", (s) => s.startsWith("published "), "the event id");
    const id = (await text("#publish-result")).replace("published ", "");
    await shows("#tail", (s) => s.includes(`${id}  hello from the form`), "the published event");

    for (let i = 0; i < 20; i++) {
      await publish(t.url, { topic: TOPIC, data: `n${i}` }, t.publisherToken);
    }
    await shows("#published", (s) => s === "21", "21 updates");
    await shows("#delivered", (s) => count(s) >= 21 * 50, "every delivery");
    assert.equal(await text("#topics td"), TOPIC);

    const screenshot = join(output, "dashboard.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok(statSync(screenshot).size > 10_000, `a screenshot at ${screenshot}`);
    assert.deepEqual(errors, [], "no console error");
  });

  test("tells a visitor without the admin right why it shows nothing", async () => {
    await page.goto(`${origin()}/`);
    await shows("#status", (s) => s.startsWith("401"), "401");
    await page.fill("#token", await mintToken(SECRET, { publish: ["*"] }));
    await page.click("#token-form button");
    await shows("#status", (s) => s.startsWith("403"), "403");
    assert.equal(await text("#subscribers"), "-");
  });
});
