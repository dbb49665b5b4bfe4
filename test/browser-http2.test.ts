/**
 * HTTP/2 in a real browser: Debian's Chromium opens 20 EventSources on one page. Over HTTP/2
 * (the hub with a self-signed certificate, `--ignore-certificate-errors`) all 20 are open at
 * once and each receives its update; against the HTTP/1.1-only hub the same page holds six, the
 * browser's limit per origin, and a seventh opens only when one of them closes. So the test
 * shows the protocol at work, not just the code path.
 *
 * Needs /usr/bin/chromium and openssl. Without Chromium the suite is skipped, except under
 * CI=true, where it fails.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { chromiumSkip, launchChromium } from "./chromium.ts";
import { publish, sleep, startHub, until } from "./helpers.ts";
import { type Certificate, selfSigned, startSecureHub } from "./tls.ts";

const skip = chromiumSkip;
const STREAMS = 20;
const TOPICS = Array.from({ length: STREAMS }, (_, i) => `https://example.com/t/${i}`);

/** The page's globals used here (the test's tsconfig has no DOM types). */
interface PageGlobals {
  EventSource: new (
    url: string,
  ) => {
    onmessage: ((event: { data: string }) => void) | null;
    onopen: (() => void) | null;
    close(): void;
  };
  location: { origin: string };
  fetch(url: string, init: object): Promise<{ status: number }>;
  URLSearchParams: typeof URLSearchParams;
  sources: { close(): void }[];
  opened: number;
  received: Record<string, string>;
}

describe("20 event streams from one page", { skip }, () => {
  let browser: Browser;
  let certificate: Certificate;
  let page: Page;
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    certificate = selfSigned();
    browser = await launchChromium(["--ignore-certificate-errors"]);
  });

  after(async () => {
    await browser?.close();
    certificate?.remove();
  });

  beforeEach(async () => {
    page = await browser.newPage();
  });

  afterEach(async () => {
    await page.close();
    for (const close of closers.splice(0)) await close();
  });

  /** Opens one EventSource per topic in the page, without waiting for any. */
  async function openAll(origin: string): Promise<void> {
    await page.goto(`${origin}/`);
    await page.evaluate((topics) => {
      const g = globalThis as unknown as PageGlobals;
      g.sources = [];
      g.opened = 0;
      g.received = {};
      for (const topic of topics) {
        const url = new URL("/.well-known/mercure", g.location.origin);
        url.searchParams.set("topic", topic);
        const source = new g.EventSource(url.href);
        source.onopen = () => {
          g.opened++;
        };
        source.onmessage = (event) => {
          g.received[topic] = event.data;
        };
        g.sources.push(source);
      }
    }, TOPICS);
  }

  const opened = () => page.evaluate(() => (globalThis as unknown as PageGlobals).opened);

  test("over HTTP/2, all 20 are open at once on one connection and each receives its update", async () => {
    const t = await startSecureHub(certificate, { keepAliveMs: 0 });
    closers.push(() => t.close());
    const sessions: unknown[] = [];
    t.server.on("session", (session) => sessions.push(session));
    await openAll(t.origin);
    await until(async () => (await opened()) === STREAMS, "20 open EventSources");
    assert.equal(t.hub.stats.subscribers, STREAMS);
    assert.deepEqual(t.hub.stats.sinks, { "node-http2": STREAMS });
    // Published from the page, over the same HTTP/2 connection.
    const statuses = await page.evaluate(
      async ([topics, token]) => {
        const g = globalThis as unknown as PageGlobals;
        const answers = topics.map((topic, i) =>
          g.fetch("/.well-known/mercure", {
            method: "POST",
            headers: {
              Authorization: `Bearer ${token}`,
              "Content-Type": "application/x-www-form-urlencoded",
            },
            body: new g.URLSearchParams({ topic, data: `update ${i}` }).toString(),
          }),
        );
        return (await Promise.all(answers)).map((answer) => answer.status);
      },
      [TOPICS, t.publisherToken] as const,
    );
    assert.deepEqual(
      statuses,
      TOPICS.map(() => 200),
    );
    await page.waitForFunction(
      (n) => Object.keys((globalThis as unknown as PageGlobals).received).length === n,
      STREAMS,
      { timeout: 10_000 },
    );
    const received = await page.evaluate(() => (globalThis as unknown as PageGlobals).received);
    assert.deepEqual(
      received,
      Object.fromEntries(TOPICS.map((topic, i) => [topic, `update ${i}`])),
    );
    // The page and its 20 streams shared one connection.
    assert.equal(sessions.length, 1);
  });

  test("over HTTP/1.1, the same page holds only six, and a seventh opens when one closes", async () => {
    const t = await startHub({ keepAliveMs: 0 });
    closers.push(() => t.close());
    await openAll(new URL(t.url).origin);
    await until(async () => (await opened()) === 6, "six open EventSources");
    // The other 14 wait in the browser, not at the hub: give them a moment to show up if they could.
    await sleep(500);
    assert.equal(await opened(), 6);
    assert.equal(t.hub.stats.subscribers, 6);
    await page.evaluate(() => {
      const g = globalThis as unknown as PageGlobals;
      for (const source of g.sources.splice(0, 6)) source.close();
    });
    await until(async () => (await opened()) === 12, "six more once six closed");
    const answer = await publish(
      t.url,
      { topic: TOPICS[19] as string, data: "late" },
      t.publisherToken,
    );
    assert.equal(answer.status, 200);
  });
});
