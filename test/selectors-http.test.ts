import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, it } from "node:test";
import { EventSource } from "eventsource";
import { createHub, type Hub } from "../src/hub.ts";
import { createHubServer, MERCURE_PATH } from "../src/mercure/index.ts";
import { until } from "./helpers.ts";

describe("topic selectors over HTTP", () => {
  let hub: Hub;
  let server: ReturnType<typeof createHubServer>;
  let base: string;
  const sources: EventSource[] = [];

  beforeEach(async () => {
    hub = createHub({ keepAliveMs: 0 });
    server = createHubServer({ hub, anonymous: true });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${MERCURE_PATH}`;
  });

  afterEach(async () => {
    for (const source of sources.splice(0)) source.close();
    await hub.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function subscribe(query: Record<string, string>): { received: string[]; opened: Promise<void> } {
    const url = new URL(base);
    for (const [name, value] of Object.entries(query)) url.searchParams.append(name, value);
    const source = new EventSource(url);
    sources.push(source);
    const received: string[] = [];
    source.onmessage = (event) => received.push(event.data);
    const opened = new Promise<void>((resolve, reject) => {
      source.onopen = () => resolve();
      source.onerror = (err) => reject(new Error(`subscription failed: ${err.message}`));
    });
    return { received, opened };
  }

  it("sends a template subscriber and a URL-pattern subscriber only their matching updates", async () => {
    const template = subscribe({ topic: "https://example.com/books/{id}" });
    const pattern = subscribe({ match_urlpattern: "https://example.com/reviews/:id" });
    await Promise.all([template.opened, pattern.opened]);

    await hub.publish({ topics: "https://example.com/books/1", data: "book 1" });
    await hub.publish({ topics: "https://example.com/reviews/2", data: "review 2" });
    await hub.publish({ topics: "https://example.com/books/3", data: "book 3" });
    await hub.publish({ topics: "https://example.com/reviews/4", data: "review 4" });
    await until(
      () => template.received.length >= 2 && pattern.received.length >= 2,
      "two updates on each subscriber",
    );

    // Updates arrive in order, so the second expected one proves the other kind was skipped.
    assert.deepEqual(template.received, ["book 1", "book 3"]);
    assert.deepEqual(pattern.received, ["review 2", "review 4"]);
  });

  it("resolves a relative URL pattern against the hub's URL", async () => {
    const relative = subscribe({ match_urlpattern: "/books/:id", match_exact: "exact" });
    await relative.opened;
    await hub.publish({ topics: "https://example.com/books/1", data: "elsewhere" });
    await hub.publish({ topics: `${new URL(base).origin}/books/1`, data: "here" });
    await hub.publish({ topics: "exact", data: "exact" });
    await until(() => relative.received.length >= 2, "two updates on the relative subscriber");
    assert.deepEqual(relative.received, ["here", "exact"]);
  });

  // [spec, draft-08] A request using a parameter name in the reserved `match` namespace […]
  // that does not correspond to a matcher type supported by the hub […] MUST be rejected with a
  // 400 […] The value of each topic matcher query parameter […] MUST NOT contain C0 […] or C1
  // […] control characters, U+007F, or Unicode format characters.
  it("answers 400 for a pathological pattern, an unknown matcher parameter, and a value with control or format characters", async () => {
    for (const query of [
      "match_urlpattern=https%3A%2F%2Fexample.com%2F*a*a*a*b",
      "match_urlpattern=https%3A%2F%2Fexample.com%2F%3Aid((a%2B)%2B)",
      "topic=https%3A%2F%2Fexample.com%2F%7Bid",
      "matchRegexp=.*",
      "matchExact=a",
      "matchURLPattern=https%3A%2F%2Fexample.com%2F%3Aid",
      "match_URLPattern=https%3A%2F%2Fexample.com%2F%3Aid",
      "Match=a",
      "match_regex=a",
      "matches=a",
      "match=a%01b",
      "match=a%7Fb",
      "match_exact=a%C2%85b",
      "match=a%E2%80%8Bb",
      "match_urlpattern=https%3A%2F%2Fexample.com%2F%E2%80%AE",
      // [spec, draft-08] Requests exceeding any such limit [matchers per request, pattern
      // length] MUST be rejected with a 400 "Bad Request" HTTP status code.
      Array.from({ length: 101 }, (_, i) => `match=t${i}`).join("&"),
      `match=${"a".repeat(1025)}`,
    ]) {
      const response = await fetch(`${base}?${query}`);
      assert.equal(response.status, 400, query);
      await response.body?.cancel();
    }
  });

  // [spec, draft-08] matcher values are UTF-8: a value that is not, once percent-decoded, is
  // refused rather than read with U+FFFD in place of its bytes (and matched against that).
  it("answers 400 with the reason for a selector that is not UTF-8, and takes one that is", async () => {
    for (const query of ["match=%FF", "topic=a%C3", "match_urlpattern=https%3A%2F%2Fa%2F%FF"]) {
      const response = await fetch(`${base}?${query}`);
      assert.equal(response.status, 400, query);
      assert.equal(await response.text(), "a query parameter is not valid UTF-8\n", query);
    }
    const utf8 = subscribe({ match: "café", topic: "a b+c" });
    await utf8.opened;
    await hub.publish({ topics: "café", data: "é" });
    await hub.publish({ topics: "a b+c", data: "space and plus" });
    await until(() => utf8.received.length >= 2, "two updates on the UTF-8 subscriber");
    assert.deepEqual(utf8.received, ["é", "space and plus"]);
  });
});
