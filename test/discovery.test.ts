import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { discoveryLink } from "../src/mercure/index.ts";

describe("discoveryLink", () => {
  test("builds the spec's minimal example", () => {
    // [spec] Link: <https://example.com/.well-known/mercure>; rel="mercure"
    assert.equal(
      discoveryLink("https://example.com/.well-known/mercure"),
      '<https://example.com/.well-known/mercure>; rel="mercure"',
    );
  });

  test("adds the topic as rel=self before the hub, as in the spec's content negotiation example", () => {
    assert.equal(
      discoveryLink("https://example.com/.well-known/mercure", { self: "/books/foo.jsonld" }),
      '</books/foo.jsonld>; rel="self", <https://example.com/.well-known/mercure>; rel="mercure"',
    );
  });

  test("advertises several hubs with last-event-id and content-type quoted", () => {
    assert.equal(
      discoveryLink(
        ["https://a.example/.well-known/mercure", "https://b.example/.well-known/mercure"],
        {
          lastEventId: 'urn:uuid:1"2',
          contentType: "application/json-patch+json",
        },
      ),
      '<https://a.example/.well-known/mercure>; rel="mercure"; last-event-id="urn:uuid:1\\"2"; content-type="application/json-patch+json", ' +
        '<https://b.example/.well-known/mercure>; rel="mercure"; last-event-id="urn:uuid:1\\"2"; content-type="application/json-patch+json"',
    );
  });

  test("refuses a URL or attribute that would break the header", () => {
    for (const bad of [
      "https://x.example/>; rel=evil",
      "https://x.example/\r\nSet-Cookie: a",
      "",
    ]) {
      assert.throws(() => discoveryLink(bad), /Link target/);
    }
    assert.throws(() => discoveryLink("https://x.example/", { lastEventId: "a\nb" }), /control/);
    assert.throws(() => discoveryLink([]), /at least one hub/);
  });
});
