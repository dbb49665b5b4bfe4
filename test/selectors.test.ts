import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCrierError } from "../src/errors.ts";
import { LruCache } from "../src/lru.ts";
import {
  compileClaim,
  compileSelector,
  coversAll,
  coversAny,
  MAX_SELECTOR_LENGTH,
  MatchCache,
  matchesTopic,
  type SelectorInput,
} from "../src/selectors/selector.ts";

function matches(selector: SelectorInput, topic: string): boolean {
  return matchesTopic(compileSelector(selector), topic);
}

function rejects(selector: SelectorInput): void {
  assert.throws(
    () => compileSelector(selector),
    (err) => isCrierError(err, "CRIER_ERR_BAD_REQUEST") && err.status === 400,
  );
}

describe("plain string selectors", () => {
  it("treats `*` as every topic, a string with `{` as a template, anything else as exact", () => {
    assert.equal(compileSelector("*").kind, "any");
    assert.equal(compileSelector("https://example.com/books/{id}").kind, "template");
    assert.equal(compileSelector("https://example.com/foo").kind, "exact");
    assert.equal(compileSelector({ exact: "https://example.com/{id}" }).kind, "exact");
    assert.equal(compileSelector({ urlpattern: "*" }).kind, "any");
  });

  it("compares exact topics byte for byte", () => {
    assert.ok(matches("https://example.com/foo", "https://example.com/foo"));
    assert.ok(!matches("https://example.com/foo", "https://example.com/Foo"));
    assert.ok(!matches({ exact: "https://example.com/{id}" }, "https://example.com/1"));
  });

  it("refuses empty and over-long selectors", () => {
    rejects("");
    rejects(`https://example.com/${"a".repeat(MAX_SELECTOR_LENGTH)}`);
  });
});

describe("URI template selectors (Mercure v0.x)", () => {
  // [spec] url.searchParams.append('topic', 'https://example.com/bar/{id}');
  it("matches the topics the subscription example's template expands to", () => {
    assert.ok(matches("https://example.com/bar/{id}", "https://example.com/bar/1"));
    assert.ok(matches("https://example.com/bar/{id}", "https://example.com/bar/foo%20bar"));
    assert.ok(!matches("https://example.com/bar/{id}", "https://example.com/bar/1/2"));
    assert.ok(!matches("https://example.com/bar/{id}", "https://example.com/foo/1"));
    assert.ok(!matches("https://example.com/bar/{id}", "https://example.com/bar/1?x"));
  });

  // [spec] "the mercure.subscribe claim could contain a topic selector such as:
  // https://example.com/users/foo/{?topic}"
  it("matches a form-style query expansion", () => {
    const selector = "https://example.com/users/foo/{?topic}";
    const topic = "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1";
    assert.ok(matches(selector, topic));
    assert.ok(matches(selector, "https://example.com/users/foo/"));
    assert.ok(!matches(selector, "https://example.com/users/bar/?topic=x"));
  });

  // [spec] `/.well-known/mercure/subscriptions/{subscriptionID}/{topic}` where `topic` is the
  // URL-encoded value of the subscribed topic
  it("matches subscription-event topics with URL-encoded variables", () => {
    const selector = "/.well-known/mercure/subscriptions/{subscriptionID}/{topic}";
    assert.ok(
      matches(
        selector,
        "/.well-known/mercure/subscriptions/urn%3Auuid%3A1/https%3A%2F%2Fexample.com%2Ffoo",
      ),
    );
    assert.ok(!matches(selector, "/.well-known/mercure/subscriptions/a/https://example.com/foo"));
  });

  // [spec] If the topic selector and the string are exactly the same, the string matches the
  // selector. This characteristic allows to compare a URI Template with another one.
  it("matches a template against itself", () => {
    assert.ok(matches("https://example.com/books/{id}", "https://example.com/books/{id}"));
  });

  it("lets reserved expansion match slashes, and simple expansion not", () => {
    assert.ok(matches("https://example.com/{+path}", "https://example.com/a/b/c"));
    assert.ok(!matches("https://example.com/{path}", "https://example.com/a/b/c"));
    assert.ok(matches("https://example.com{/segments*}", "https://example.com/a/b/c"));
    assert.ok(matches("https://example.com/files{.ext}", "https://example.com/files.json"));
  });

  it("refuses invalid templates", () => {
    rejects("https://example.com/{id");
    rejects({ template: "https://example.com/id}" });
    rejects("https://example.com/{}");
    rejects("https://example.com/{=id}");
    rejects("https://example.com/{a b}");
  });
});

describe("URL pattern selectors (Mercure draft-08)", () => {
  // [spec, draft-08] url.searchParams.append('match_urlpattern', 'https://example.com/bar/:id');
  it("matches the subscription example's pattern", () => {
    const selector = { urlpattern: "https://example.com/bar/:id" };
    assert.ok(matches(selector, "https://example.com/bar/1"));
    assert.ok(!matches(selector, "https://example.com/bar/1/2"));
    assert.ok(!matches(selector, "https://example.com/foo/1"));
    assert.ok(!matches(selector, "bar"));
  });

  // [spec, draft-08] URL patterns MAY be absolute (e.g., `https://example.com/books/:id`) or relative
  // (e.g., `/.well-known/mercure/subscriptions/exact/:topic/:subscriber`). When evaluating a
  // relative pattern or a relative topic, the hub MUST use the hub's URL as the base URL.
  it("resolves relative patterns and relative topics against the hub's URL", () => {
    const selector = {
      urlpattern: "/.well-known/mercure/subscriptions/exact/:topic/:subscriber",
      base: "https://hub.example.com/.well-known/mercure",
    };
    assert.ok(
      matches(selector, "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fa%2Fb/urn%3Ax"),
    );
    assert.ok(
      matches(selector, "https://hub.example.com/.well-known/mercure/subscriptions/exact/a/b"),
    );
    assert.ok(
      !matches(selector, "https://other.example/.well-known/mercure/subscriptions/exact/a/b"),
    );
    assert.ok(
      matches({ urlpattern: "https://example.com/books/:id" }, "https://example.com/books/7"),
    );
  });

  // [spec] hubs MUST NOT enable the `ignoreCase` option. Host components remain
  // case-insensitive as defined by URL canonicalization; all other components are case-sensitive.
  it("is case-sensitive except for the host", () => {
    const selector = { urlpattern: "https://example.com/Books/:id" };
    assert.ok(matches(selector, "https://EXAMPLE.com/Books/1"));
    assert.ok(!matches(selector, "https://example.com/books/1"));
  });

  it("refuses a relative pattern without a base, and invalid patterns", () => {
    rejects({ urlpattern: "/books/:id" });
    rejects({ urlpattern: "https://example.com/:id:id" });
  });
});

describe("pathological selectors", () => {
  it("refuses URL patterns with regexp groups, repeated groups or too many groups", () => {
    rejects({ urlpattern: "https://example.com/:id(\\d+)" });
    rejects({ urlpattern: "https://example.com/:id((a+)+)b" });
    rejects({ urlpattern: "https://example.com/:id+" });
    rejects({ urlpattern: "https://example.com/*a*a*a*b" });
  });

  it("returns for the worst URL pattern it accepts against a long topic", () => {
    const selector = compileSelector({ urlpattern: "https://x.test/*a*b" });
    assert.equal(matchesTopic(selector, `https://x.test/${"a".repeat(2000)}`), false);
    // Over the evaluated length, a URL pattern does not match at all.
    assert.equal(matchesTopic(selector, `https://x.test/${"a".repeat(5000)}b`), false);
  });

  it("returns for a template whose regexp would backtrack catastrophically", () => {
    const template = `https://x.test/${Array.from({ length: 16 }, (_, i) => `{+v${i}}a`).join("")}`;
    const selector = compileSelector(template);
    assert.equal(matchesTopic(selector, `https://x.test/${"a".repeat(50_000)}!`), false);
    assert.equal(matchesTopic(selector, `https://x.test/${"a".repeat(50_000)}`), true);
  });

  it("refuses templates with too many variables", () => {
    rejects(`https://x.test/${Array.from({ length: 33 }, (_, i) => `{v${i}}`).join("/")}`);
  });
});

describe("MatchCache", () => {
  it("never holds more than its bound and keeps answering right", () => {
    const cache = new MatchCache(8);
    const selector = compileSelector("https://example.com/books/{id}");
    for (let i = 0; i < 100; i++) {
      assert.equal(cache.match(selector, `https://example.com/books/${i}`), true);
      assert.equal(cache.match(selector, `https://example.com/reviews/${i}`), false);
      assert.ok(cache.size <= 8, `size ${cache.size} exceeds the bound`);
    }
    assert.equal(cache.size, 8);
  });

  it("does not cache pairs longer than its key bound", () => {
    const cache = new MatchCache(8, 64);
    const selector = compileSelector("https://example.com/books/{id}");
    assert.equal(cache.match(selector, `https://example.com/books/${"1".repeat(100)}`), true);
    assert.equal(cache.size, 0);
  });
});

describe("LruCache", () => {
  it("evicts the least recently used key at its bound", () => {
    const lru = new LruCache<string, number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    assert.equal(lru.get("a"), 1);
    lru.set("c", 3);
    assert.equal(lru.get("b"), undefined);
    assert.equal(lru.get("a"), 1);
    assert.equal(lru.get("c"), 3);
    assert.equal(lru.size, 2);
  });
});

describe("token claims", () => {
  // [spec] the hub MUST check that every topics of the update to dispatch matches at least one
  // of the topic selectors contained in `mercure.publish`.
  it("authorizes with templates and `*`", () => {
    assert.ok(coversAll(["https://example.com/books/{id}"], ["https://example.com/books/1"]));
    assert.ok(!coversAll(["https://example.com/books/{id}"], ["https://example.com/books/1", "x"]));
    assert.ok(coversAll(["*"], ["anything"]));
    assert.ok(coversAny(["https://example.com/books/{id}"], ["x", "https://example.com/books/2"]));
    assert.ok(!coversAny([], ["x"]));
  });

  it("compares a claim that is not a valid template exactly", () => {
    const claim = compileClaim("https://example.com/{broken");
    assert.equal(claim.kind, "exact");
    assert.ok(matchesTopic(claim, "https://example.com/{broken"));
  });
});
