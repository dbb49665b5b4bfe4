import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { exportJWK } from "jose";
import type { CloseReason } from "../src/subscriber.ts";
import { openStream, publish, sleep, startHub, type TestHub, until } from "./helpers.ts";
import {
  AUDIENCE,
  accessToken,
  ecKeys,
  hmacWith,
  ISSUER,
  rsaKeys,
  sign,
  unsigned,
} from "./tokens.ts";

const rsa = rsaKeys();
const now = () => Math.floor(Date.now() / 1000);
const v0 = (mercure: Record<string, unknown>, claims: Record<string, unknown> = {}) =>
  sign({ mercure, ...claims }, rsa.privateKey);
const DETAIL = "https://mercure.rocks/authorization-detail";
const grant = (actions: string[], match: string, match_type = "exact") => [
  { type: DETAIL, actions, topics: [{ match, match_type }] },
];
// [spec, draft-08] the challenge SHOULD include the `resource_metadata` parameter
const METADATA = "https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure";
const challenge = (error?: string) =>
  error === undefined
    ? `Bearer resource_metadata="${METADATA}"`
    : `Bearer error="${error}", resource_metadata="${METADATA}"`;

describe("tokens over HTTP", () => {
  let t: TestHub;
  before(async () => {
    t = await startHub(
      {},
      {
        publisherKey: rsa.publicPem,
        subscriberKey: rsa.publicPem,
        jwtAudience: AUDIENCE,
        jwtIssuer: ISSUER,
        corsOrigins: ["https://app.example", "*"],
      },
    );
  });
  after(() => t.close());

  test("answers 401 with a Bearer challenge without an error code, naming the metadata, when no token is presented", async () => {
    const res = await publish(t.url, { topic: "t" });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("www-authenticate"), challenge());
  });

  const refused: [string, () => Promise<string>][] = [
    ["alg none", async () => unsigned({ mercure: { publish: ["*"] } })],
    [
      "HS256 keyed with the RSA public key's PEM (key confusion)",
      async () => hmacWith(rsa.publicPem, { mercure: { publish: ["*"] } }),
    ],
    ["an expired token", () => v0({ publish: ["*"] }, { exp: now() - 5 })],
    [
      "an at+jwt with a wrong aud",
      () => accessToken(grant(["publish"], "*"), rsa.privateKey, { aud: "https://other.example" }),
    ],
    [
      "an at+jwt with a wrong iss",
      () => accessToken(grant(["publish"], "*"), rsa.privateKey, { iss: "https://evil.example" }),
    ],
    [
      "an at+jwt with an unknown match_type",
      () => accessToken(grant(["publish"], "t", "regex"), rsa.privateKey),
    ],
    [
      "an at+jwt whose match_type is in the wrong case",
      () => accessToken(grant(["publish"], "t", "URLPattern"), rsa.privateKey),
    ],
    [
      "an at+jwt with a non-string action",
      () =>
        accessToken(
          [{ type: DETAIL, actions: ["publish", 7], topics: [{ match: "*" }] }],
          rsa.privateKey,
        ),
    ],
    [
      "an at+jwt with one malformed detail beside a valid one",
      () =>
        accessToken(
          [...grant(["publish"], "*"), { type: DETAIL, actions: ["publish"], topics: "*" }],
          rsa.privateKey,
        ),
    ],
  ];
  for (const [name, make] of refused) {
    test(`answers 401 invalid_token to a publisher presenting ${name}`, async () => {
      const res = await publish(t.url, { topic: "t" }, await make());
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("www-authenticate"), challenge("invalid_token"));
    });

    test(`answers 401 invalid_token to a subscriber presenting ${name}`, async () => {
      const s = await openStream(`${t.url}?topic=t`, { Authorization: `Bearer ${await make()}` });
      s.close();
      assert.equal(s.status, 401);
      assert.equal(s.headers["www-authenticate"], challenge("invalid_token"));
    });
  }

  test("accepts a v0.x token without iss or aud on a hub that checks them for access tokens", async () => {
    const res = await publish(t.url, { topic: "t" }, await v0({ publish: ["t"] }));
    assert.equal(res.status, 200);
  });

  test("answers 403 insufficient_scope to a v0.x token without the publish claim", async () => {
    const res = await publish(t.url, { topic: "t" }, await v0({ subscribe: ["*"] }));
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("www-authenticate"), challenge("insufficient_scope"));
  });

  test("accepts an at+jwt granting publish on the topic, 403 without the action or the topic", async () => {
    const ok = await accessToken(grant(["publish"], "https://example.com/books/1"), rsa.privateKey);
    const fields = { topic: "https://example.com/books/1" };
    assert.equal((await publish(t.url, fields, ok)).status, 200);
    const subscribeOnly = await accessToken(grant(["subscribe"], "*"), rsa.privateKey);
    const noAction = await publish(t.url, fields, subscribeOnly);
    assert.equal(noAction.status, 403);
    assert.equal(noAction.headers.get("www-authenticate"), challenge("insufficient_scope"));
    const otherTopic = await accessToken(
      grant(["publish"], "https://example.com/books/2"),
      rsa.privateKey,
    );
    assert.equal((await publish(t.url, fields, otherTopic)).status, 403);
  });

  // [spec, draft-08] Hubs MUST ignore action values they do not recognize: an unrecognized
  // action grants nothing, and its presence does not invalidate the token.
  test("ignores an unknown action: it grants nothing and does not invalidate the token", async () => {
    const fields = { topic: "https://example.com/books/1" };
    const withPublish = await accessToken(grant(["publish", "admin"], "*"), rsa.privateKey);
    assert.equal((await publish(t.url, fields, withPublish)).status, 200);
    const onlyUnknown = await accessToken(grant(["admin"], "*"), rsa.privateKey);
    const res = await publish(t.url, fields, onlyUnknown);
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("www-authenticate"), challenge("insufficient_scope"));
  });

  test("ignores authorization details of another type, and those spelled with the old type", async () => {
    const fields = { topic: "https://example.com/books/1" };
    const other = await accessToken(
      [
        { type: "mercure", actions: ["publish"], topics: [{ match: "*" }] },
        { type: "https://example.com/payment", actions: 3 },
      ],
      rsa.privateKey,
    );
    assert.equal((await publish(t.url, fields, other)).status, 403);
  });

  // [spec, draft-08] the hub SHOULD publish OAuth 2.0 Protected Resource Metadata […] at
  // `/.well-known/oauth-protected-resource/.well-known/mercure` […] MUST include the `resource`
  // member
  test("serves its protected resource metadata at the path RFC 9728 derives from its audience", async () => {
    const res = await fetch(
      `http://127.0.0.1:${t.port}/.well-known/oauth-protected-resource/.well-known/mercure`,
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(
      await res.text(),
      JSON.stringify({
        resource: AUDIENCE,
        authorization_servers: [ISSUER],
        authorization_details_types_supported: [DETAIL],
        bearer_methods_supported: ["header"],
        mercure_cookie: "__Secure-mercure_access_token",
      }),
    );
  });

  test("delivers a private update to an at+jwt subscriber only for the topics it grants", async () => {
    const books = await accessToken(
      grant(["subscribe"], "https://example.com/books/:id", "urlpattern"),
      rsa.privateKey,
    );
    const s = await openStream(`${t.url}?topic=*`, {
      Authorization: `Bearer ${books}`,
    });
    try {
      assert.equal(s.status, 200);
      const pub = await v0({ publish: ["*"] });
      await publish(
        t.url,
        { topic: "https://example.com/authors/1", data: "no", private: "on" },
        pub,
      );
      await publish(
        t.url,
        { topic: "https://example.com/books/1", data: "yes", private: "on" },
        pub,
      );
      const [event] = await s.waitForEvents(1);
      assert.equal(event?.data, "yes");
    } finally {
      s.close();
    }
  });

  test("refuses a cookie-authenticated publish without Origin or from another site (CSRF), accepts an allowed one", async () => {
    const cookie = `mercureAuthorization=${await v0({ publish: ["*"] })}`;
    const attempt = (headers: Record<string, string>) =>
      publish(t.url, { topic: "t" }, undefined, { Cookie: cookie, ...headers });
    const none = await attempt({});
    assert.equal(none.status, 403);
    assert.match(none.body, /Origin/);
    assert.equal((await attempt({ Origin: "https://evil.example" })).status, 403);
    assert.equal((await attempt({ Origin: "null" })).status, 403);
    assert.equal((await attempt({ Referer: "https://evil.example/page" })).status, 403);
    assert.equal((await attempt({ Origin: "https://app.example" })).status, 200);
    assert.equal((await attempt({ Origin: `http://127.0.0.1:${t.port}` })).status, 200);
    assert.equal((await attempt({ Referer: "https://app.example/form" })).status, 200);
    // A header token is not ambient: no Origin needed.
    assert.equal((await publish(t.url, { topic: "t" }, await v0({ publish: ["*"] }))).status, 200);
  });

  test("refuses the authorization query parameter by default", async () => {
    const token = await v0({ subscribe: ["*"] });
    const s = await openStream(`${t.url}?topic=t&authorization=${token}`);
    s.close();
    assert.equal(s.status, 400);
    assert.equal(s.headers["www-authenticate"], 'Bearer error="invalid_request"');
  });

  test("closes a subscription when its token expires, so the client reconnects", async () => {
    const reasons: CloseReason[] = [];
    const onDisconnect = (_: unknown, reason: CloseReason) => reasons.push(reason);
    t.hub.on("disconnect", onDisconnect);
    try {
      const token = await v0({ subscribe: ["*"] }, { exp: now() + 2 });
      const s = await openStream(`${t.url}?topic=t`, { Authorization: `Bearer ${token}` });
      assert.equal(s.status, 200);
      await s.ended;
      assert.deepEqual(reasons, ["expired"]);
    } finally {
      t.hub.off("disconnect", onDisconnect);
    }
  });
});

// The hub's URL is the base of relative grants and the origin a cookie publish must come from.
// By default it is read from each request, so the client's Host decides; `publicOrigin` fixes it.
describe("a hub's public origin", () => {
  let open: TestHub;
  let fixed: TestHub;
  before(async () => {
    const options = {
      publisherKey: rsa.publicPem,
      subscriberKey: rsa.publicPem,
      jwtAudience: AUDIENCE,
      jwtIssuer: ISSUER,
    };
    open = await startHub({}, options);
    fixed = await startHub({}, { ...options, publicOrigin: "https://hub.example" });
  });
  after(async () => {
    await open.close();
    await fixed.close();
  });

  async function received(hub: TestHub, host: string): Promise<string | undefined> {
    const relative = await accessToken(
      grant(["subscribe"], "/books/:id", "urlpattern"),
      rsa.privateKey,
    );
    const s = await openStream(`${hub.url}?topic=*`, {
      Authorization: `Bearer ${relative}`,
      Host: host,
    });
    try {
      assert.equal(s.status, 200);
      const pub = await v0({ publish: ["*"] });
      for (const [topic, data] of <[string, string][]>[
        ["http://victim.example/books/1", "victim's"],
        ["https://hub.example/books/2", "hub's"],
      ]) {
        assert.equal((await publish(hub.url, { topic, data, private: "on" }, pub)).status, 200);
      }
      const [event] = await s.waitForEvents(1);
      return event?.data;
    } finally {
      s.close();
    }
  }

  test("resolves a relative grant against the request's Host by default, and against publicOrigin when set", async () => {
    assert.equal(await received(open, "victim.example"), "victim's");
    assert.equal(await received(fixed, "victim.example"), "hub's");
  });

  test("takes a cookie publish from publicOrigin (a TLS-terminating proxy in front), not from the request's origin", async () => {
    const cookie = `mercureAuthorization=${await v0({ publish: ["*"] })}`;
    const attempt = (origin: string) =>
      publish(fixed.url, { topic: "t" }, undefined, { Cookie: cookie, Origin: origin });
    assert.equal((await attempt("https://hub.example")).status, 200);
    assert.equal((await attempt(`http://127.0.0.1:${fixed.port}`)).status, 403);
  });

  test("refuses a publicOrigin that is not an origin", async () => {
    for (const bad of ["hub.example", "https://hub.example/", "https://hub.example:443", 42]) {
      await assert.rejects(
        startHub({}, { publicOrigin: bad as string }),
        (err: NodeJS.ErrnoException) =>
          err.code === "CRIER_ERR_INVALID_OPTION" &&
          /publicOrigin must be an origin/.test(err.message),
        String(bad),
      );
    }
  });
});

describe("Last-Event-ID response headers", () => {
  let t: TestHub;
  before(async () => {
    t = await startHub({}, { publisherKey: rsa.publicPem, subscriberKey: rsa.publicPem });
  });
  after(() => t.close());

  test("never disclose a private update's id to a subscriber that may not see it", async () => {
    const pub = await v0({ publish: ["*"] });
    const anonymousEmpty = await openStream(`${t.url}?topic=x`);
    anonymousEmpty.close();
    assert.equal(anonymousEmpty.headers["last-event-id"], undefined);
    await publish(t.url, { topic: "news", id: "public-1" }, pub);
    await publish(t.url, { topic: "secret", id: "private-1", private: "on" }, pub);
    const anonymous = await openStream(`${t.url}?topic=x`);
    anonymous.close();
    assert.equal(anonymous.headers["last-event-id"], "public-1");
    assert.equal(anonymous.headers["mercure-last-event-id"], "public-1");
    const allowed = await openStream(`${t.url}?topic=x`, {
      Authorization: `Bearer ${await v0({ subscribe: ["secret"] })}`,
    });
    allowed.close();
    assert.equal(allowed.headers["last-event-id"], "private-1");
    assert.equal(allowed.headers["mercure-last-event-id"], "private-1");
  });

  test("re-authorize replayed updates against the token presented on reconnection", async () => {
    const pub = await v0({ publish: ["*"] });
    const from = (await publish(t.url, { topic: "r", data: "start" }, pub)).body;
    await publish(t.url, { topic: "r", data: "private", private: "on" }, pub);
    await publish(t.url, { topic: "r", data: "public" }, pub);
    const resume = async (token: string) => {
      const s = await openStream(`${t.url}?topic=r`, {
        "Last-Event-ID": from,
        Authorization: `Bearer ${token}`,
      });
      try {
        assert.equal(s.headers["last-event-id"], from);
        assert.equal(s.headers["mercure-last-event-id"], from);
        await s.waitForEvents(1);
        await sleep(50);
        return s.events.map((e) => e.data);
      } finally {
        s.close();
      }
    };
    assert.deepEqual(await resume(await v0({ subscribe: ["r"] })), ["private", "public"]);
    assert.deepEqual(await resume(await v0({ subscribe: ["other"] })), ["public"]);
  });
});

describe("the hub's other token sources and limits", () => {
  test("verifies tokens with a JWK Set file's key, chosen by kid", async () => {
    const ec = ecKeys();
    const { d: _, ...jwk } = await exportJWK(ec.privateKey);
    const t = await startHub(
      {},
      {
        publisherKey: undefined,
        subscriberKey: undefined,
        jwks: { keys: [{ ...jwk, kid: "k1" }] },
      },
    );
    try {
      const token = await sign({ mercure: { publish: ["*"] } }, ec.privateKey, { kid: "k1" });
      assert.equal((await publish(t.url, { topic: "t" }, token)).status, 200);
      const stranger = await sign({ mercure: { publish: ["*"] } }, ecKeys().privateKey, {
        kid: "k1",
      });
      assert.equal((await publish(t.url, { topic: "t" }, stranger)).status, 401);
    } finally {
      await t.close();
    }
  });

  test("accepts the authorization query parameter when enabled", async () => {
    const t = await startHub(
      {},
      { publisherKey: rsa.publicPem, subscriberKey: rsa.publicPem, authorizationQuery: true },
    );
    try {
      const token = await v0({ subscribe: ["q"] });
      const s = await openStream(`${t.url}?topic=q&authorization=${token}`);
      try {
        assert.equal(s.status, 200);
        await publish(
          t.url,
          { topic: "q", data: "private", private: "on" },
          await v0({ publish: ["*"] }),
        );
        const [event] = await s.waitForEvents(1);
        assert.equal(event?.data, "private");
      } finally {
        s.close();
      }
    } finally {
      await t.close();
    }
  });

  test("answers 429 with Retry-After past maxSubscribers, and admits again once one leaves", async () => {
    const t = await startHub({}, { maxSubscribers: 2 });
    try {
      const first = await openStream(`${t.url}?topic=a`);
      const second = await openStream(`${t.url}?topic=a`);
      const third = await openStream(`${t.url}?topic=a`);
      await third.ended;
      assert.equal(third.status, 429);
      assert.match(String(third.headers["retry-after"]), /^\d+$/);
      assert.match(third.raw(), /maximum of 2 subscriptions/);
      first.close();
      await until(() => t.hub.stats.subscribers < 2, "the expired subscription to end");
      const fourth = await openStream(`${t.url}?topic=a`);
      fourth.close();
      second.close();
      assert.equal(fourth.status, 200);
    } finally {
      await t.close();
    }
  });
});
