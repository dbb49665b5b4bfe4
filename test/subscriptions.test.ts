import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseServeConfig } from "../src/cli/config.ts";
import {
  describeSubscriptions,
  expand,
  parseSubscriptionsPath,
  subscriptionEventData,
} from "../src/mercure/subscriptions.ts";

const S = "/.well-known/mercure/subscriptions";
const SUBSCRIBER = "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6";

describe("naming active subscriptions", () => {
  // [spec, v0.x] "id": "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2F%7Bselector%7D/urn%3Auuid%3Abb3de268-…"
  it("names a v0.x topic subscription as the spec's example does", () => {
    const [sub] = describeSubscriptions(
      SUBSCRIBER,
      ["https://example.com/{selector}"],
      [{ foo: "bar" }],
    );
    assert.ok(sub);
    assert.equal(
      sub.id,
      `${S}/https%3A%2F%2Fexample.com%2F%7Bselector%7D/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6`,
    );
    assert.deepEqual(JSON.parse(subscriptionEventData(sub, true)), {
      "@context": "https://mercure.rocks/",
      id: sub.id,
      type: "Subscription",
      topic: "https://example.com/{selector}",
      subscriber: SUBSCRIBER,
      active: true,
      payload: { foo: "bar" },
    });
  });

  // [spec, draft-08] { "id": "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6",
  // "type": "subscription", "match_type": "urlpattern", "match": "https://example.com/:selector",
  // "subscriber": "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6", "active": true, "payload": {"foo": "bar"} }
  it("names and describes draft-08 subscriptions as the spec's example does, byte for byte", () => {
    const [pattern, exact] = describeSubscriptions(
      SUBSCRIBER,
      [{ urlpattern: "https://example.com/:selector" }, { exact: "https://example.com/a-topic" }],
      [{ foo: "bar" }, undefined],
    );
    assert.ok(pattern && exact);
    assert.equal(
      pattern.id,
      `${S}/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6`,
    );
    assert.equal(exact.collection, `${S}/exact/https%3A%2F%2Fexample.com%2Fa-topic`);
    assert.equal(
      subscriptionEventData(pattern, true),
      '{"id":"/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6",' +
        '"type":"subscription","match_type":"urlpattern","match":"https://example.com/:selector",' +
        '"subscriber":"urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6","active":true,"payload":{"foo":"bar"}}',
    );
    assert.deepEqual(JSON.parse(subscriptionEventData(exact, false)), {
      id: exact.id,
      type: "subscription",
      match_type: "exact",
      match: "https://example.com/a-topic",
      subscriber: SUBSCRIBER,
      active: false,
    });
  });

  // [spec] the value of each variable MUST be percent-encoded exactly once during expansion
  // (any `%` characters it already contains are themselves encoded).
  it("percent-encodes every reserved character exactly once", () => {
    assert.equal(expand("a%2Fb"), "a%252Fb");
    assert.equal(expand("!*'()~-._"), "%21%2A%27%28%29~-._");
    assert.equal(expand("é/ {x}"), "%C3%A9%2F%20%7Bx%7D");
    assert.equal(expand("\uD800"), "%EF%BF%BD");
  });

  it("reads every API path shape and normalizes its encoding", () => {
    assert.deepEqual(parseSubscriptionsPath(S), { kind: "all", path: S });
    assert.deepEqual(parseSubscriptionsPath(`${S}/a%3ab`), {
      kind: "collection",
      path: `${S}/a%3Ab`,
      maybeOne: false,
    });
    assert.deepEqual(parseSubscriptionsPath(`${S}/exact/a`), {
      kind: "collection",
      path: `${S}/exact/a`,
      maybeOne: true,
    });
    assert.deepEqual(parseSubscriptionsPath(`${S}/topic/sub`), {
      kind: "one",
      path: `${S}/topic/sub`,
    });
    assert.deepEqual(parseSubscriptionsPath(`${S}/urlpattern/a/sub`), {
      kind: "one",
      path: `${S}/urlpattern/a/sub`,
    });
    for (const bad of [
      `${S}/a/b/c`,
      `${S}/exact/a/b/c`,
      `${S}/Exact/a/b`,
      `${S}/`,
      `${S}x`,
      `${S}//a`,
    ]) {
      assert.equal(parseSubscriptionsPath(bad), undefined, bad);
    }
    for (const bad of [`${S}/%zz`, `${S}/%FF`, `${S}/exact/a%C3/sub`]) {
      assert.throws(() => parseSubscriptionsPath(bad), { code: "CRIER_ERR_BAD_REQUEST" }, bad);
    }
  });
});

describe("the --subscriptions flag", () => {
  const key = ["--jwt-key", "k".repeat(32)];
  it("is off by default and on with the flag or CRIER_SUBSCRIPTIONS", () => {
    assert.equal(parseServeConfig(key, {}).handler.subscriptions, false);
    assert.equal(parseServeConfig([...key, "--subscriptions"], {}).handler.subscriptions, true);
    assert.equal(parseServeConfig(key, { CRIER_SUBSCRIPTIONS: "1" }).handler.subscriptions, true);
    assert.equal(
      parseServeConfig(key, { CRIER_SUBSCRIPTIONS: "false" }).handler.subscriptions,
      false,
    );
  });
});
