import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { describe, test } from "node:test";
import { exportJWK } from "jose";
import { isCrierError } from "../src/errors.ts";
import { credentialOf } from "../src/mercure/http/credential.ts";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { Authenticator, type Claims, payloadFor } from "../src/mercure/tokens/verify.ts";
import { coversAll, coversAny } from "../src/selectors/selector.ts";
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

const SECRET = "unit-secret-of-enough-length-for-hs256!!";
const BASE = "https://example.com/.well-known/mercure";
const rsa = rsaKeys();
const auth = new Authenticator({
  publisherKey: SECRET,
  subscriberKey: rsa.publicPem,
  audience: AUDIENCE,
  issuer: ISSUER,
});

async function rejects(promise: Promise<unknown>, reason: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isCrierError(err, "CRIER_ERR_INVALID_TOKEN"), String(err));
    assert.match((err as Error).message, reason);
    return true;
  });
}

const now = () => Math.floor(Date.now() / 1000);

describe("v0.x tokens (the mercure claim)", () => {
  test("grant what mercure.publish and mercure.subscribe list, as URI templates or exact topics", async () => {
    const token = await mintToken(SECRET, {
      publish: ["https://example.com/books/{id}", "exact"],
    });
    const claims = await auth.verify(token, "publisher");
    assert.equal(claims.revision, "v0");
    assert.ok(coversAll(claims.publish, ["https://example.com/books/1", "exact"]));
    assert.ok(!coversAny(claims.publish, ["https://example.com/authors/1"]));
  });

  test("are accepted without iss and aud, even when the hub checks them for access tokens", async () => {
    const claims = await auth.verify(
      await sign({ mercure: { publish: ["*"] } }, SECRET),
      "publisher",
    );
    assert.ok(coversAll(claims.publish, ["anything"]));
  });

  test("carry mercure.payload for every subscription", async () => {
    const token = await sign(
      { mercure: { subscribe: ["*"], payload: { user: 1 } } },
      rsa.privateKey,
    );
    const claims = await auth.verify(token, "subscriber");
    assert.deepEqual(payloadFor(claims, "https://example.com/foo"), { user: 1 });
  });

  test("are refused once exp has passed, and before nbf", async () => {
    await rejects(
      auth.verify(await sign({ mercure: {}, exp: now() - 10 }, SECRET), "publisher"),
      /expired/,
    );
    await rejects(
      auth.verify(await sign({ mercure: {}, nbf: now() + 60 }, SECRET), "publisher"),
      /nbf/,
    );
  });

  test("with alg none are refused", async () => {
    await rejects(auth.verify(unsigned({ mercure: { publish: ["*"] } }), "publisher"), /algorithm/);
  });

  test("HMAC-signed with the RSA public key's PEM text are refused (key confusion)", async () => {
    const forged = hmacWith(rsa.publicPem, { mercure: { subscribe: ["*"] } });
    await rejects(auth.verify(forged, "subscriber"), /algorithm not allowed/);
  });

  test("naming their own key in a jwk header are verified with the configured key, and refused", async () => {
    const attacker = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = await exportJWK(attacker.publicKey);
    const token = await sign({ mercure: { subscribe: ["*"] } }, attacker.privateKey, {
      header: { jwk, jku: "https://evil.example/jwks.json", x5u: "https://evil.example/cert" },
    });
    await rejects(auth.verify(token, "subscriber"), /signature/);
  });

  test("signed with the publisher key are refused for the subscriber role", async () => {
    const token = await mintToken(SECRET, { subscribe: ["*"] });
    await rejects(auth.verify(token, "subscriber"), /algorithm not allowed/);
  });
});

describe("draft-08 access tokens (typ at+jwt)", () => {
  const DETAIL = "https://mercure.rocks/authorization-detail";
  const detail = (actions: unknown[], topics: unknown, extra: Record<string, unknown> = {}) => ({
    type: DETAIL,
    actions,
    topics,
    ...extra,
  });

  // [spec, draft-08] a self-issued subscriber token is a JWS with the protected header
  // `{"alg": "ES256", "typ": "at+jwt"}` and the following claims: […] "authorization_details":
  // [{"type": "https://mercure.rocks/authorization-detail", "actions": ["subscribe"], "topics":
  // [{"match": "https://example.com/books/:id", "match_type": "urlpattern"}]}]
  test("shaped as the spec's self-issued subscriber token grant subscribe on the book pattern", async () => {
    const ec = ecKeys();
    const hub = new Authenticator({
      subscriberKey: ec.publicPem,
      audience: "https://hub.example.com/.well-known/mercure",
      issuer: "https://example.com",
    });
    const iat = now();
    const token = await sign(
      {
        iss: "https://example.com",
        aud: "https://hub.example.com/.well-known/mercure",
        sub: "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
        client_id: "https://example.com",
        iat,
        exp: iat + 300,
        jti: "urn:uuid:e70ff8d7-59d5-4a92-b0b7-505e8f6d09fa",
        authorization_details: [
          {
            type: "https://mercure.rocks/authorization-detail",
            actions: ["subscribe"],
            topics: [{ match: "https://example.com/books/:id", match_type: "urlpattern" }],
          },
        ],
      },
      ec.privateKey,
      { alg: "ES256", typ: "at+jwt" },
    );
    const claims = await hub.verify(
      token,
      "subscriber",
      "https://hub.example.com/.well-known/mercure",
    );
    assert.equal(claims.revision, "draft-08");
    assert.equal(claims.subject, "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6");
    assert.ok(coversAny(claims.subscribe, ["https://example.com/books/1"]));
    assert.ok(!coversAny(claims.subscribe, ["https://example.com/authors/1"]));
    assert.deepEqual(claims.publish, []);
  });

  // [spec, draft-08] the example of a token that authorizes reading only specific books:
  // {"match": "https://example.com/books/1", "match_type": "exact"}, {"match":
  // "https://example.com/books/7", "match_type": "exact"}
  test("grant subscribe on exactly the listed topics (the spec's books example)", async () => {
    const books = [
      detail(
        ["subscribe"],
        [
          { match: "https://example.com/books/1", match_type: "exact" },
          { match: "https://example.com/books/7", match_type: "exact" },
        ],
      ),
    ];
    const claims = await auth.verify(await accessToken(books, rsa.privateKey), "subscriber", BASE);
    assert.equal(claims.revision, "draft-08");
    assert.equal(claims.subject, "user-1");
    assert.ok(coversAny(claims.subscribe, ["https://example.com/books/1"]));
    assert.ok(coversAny(claims.subscribe, ["https://example.com/books/7"]));
    assert.ok(!coversAny(claims.subscribe, ["https://example.com/books/2"]));
    assert.deepEqual(claims.publish, []);
  });

  // [spec, draft-08] a subscriber authorized only for its own namespace,
  // `https://example.com/users/42/*` […] The token does grant `subscribe` on the alternate
  // topic, so the hub delivers the update.
  test("grant subscribe through an alternate topic (the spec's users/42 example)", async () => {
    const token = await accessToken(
      [
        detail(
          ["subscribe"],
          [{ match: "https://example.com/users/42/*", match_type: "urlpattern" }],
        ),
      ],
      rsa.privateKey,
    );
    const claims = await auth.verify(token, "subscriber", BASE);
    const update = ["https://example.com/books/1", "https://example.com/users/42/books/1"];
    assert.ok(coversAny(claims.subscribe, update));
    assert.ok(!coversAny(claims.subscribe, ["https://example.com/books/1"]));
    assert.ok(!coversAny(claims.subscribe, ["https://example.com/users/43/books/1"]));
  });

  test("match URL patterns, relative ones against the hub's URL, and * whatever the match_type", async () => {
    const token = await accessToken(
      [
        detail(
          ["publish", "subscribe"],
          [
            { match: "https://example.com/bar/:id", match_type: "urlpattern" },
            {
              match: "/.well-known/mercure/subscriptions/exact/:topic/:subscriber",
              match_type: "urlpattern",
            },
            { match: "https://example.com/{x}" },
          ],
        ),
      ],
      SECRET,
    );
    const claims = await auth.verify(token, "publisher", BASE);
    assert.ok(coversAll(claims.publish, ["https://example.com/bar/42"]));
    assert.ok(coversAll(claims.publish, ["/.well-known/mercure/subscriptions/exact/a/b"]));
    // exact is byte for byte: a template-looking matcher is not a template.
    assert.ok(coversAll(claims.publish, ["https://example.com/{x}"]));
    assert.ok(!coversAny(claims.publish, ["https://example.com/y"]));
    for (const topics of [[{ match: "*", match_type: "urlpattern" }], [{ match: "*" }]]) {
      const wildcard = await accessToken([detail(["publish"], topics)], SECRET);
      assert.ok(coversAll((await auth.verify(wildcard, "publisher", BASE)).publish, ["any"]));
    }
  });

  // [spec, draft-08] Example access token claims carrying payloads (custom1, custom2, custom3).
  test("choose payloads by the first grant matching the subscription's matcher (the spec's example)", async () => {
    const token = await accessToken(
      [
        detail(["subscribe"], [{ match: "https://example.com/foo" }], {
          payload: { custom1: "data only available for this topic" },
        }),
        detail(
          ["subscribe"],
          [{ match: "https://example.com/bar/:id", match_type: "urlpattern" }],
          {
            payload: { custom2: "data available for matching subscriptions" },
          },
        ),
        detail(["subscribe"], [{ match: "*" }], {
          payload: { custom3: "default data for all other subscriptions" },
        }),
      ],
      rsa.privateKey,
    );
    const claims: Claims = await auth.verify(token, "subscriber", BASE);
    assert.deepEqual(payloadFor(claims, "https://example.com/foo"), {
      custom1: "data only available for this topic",
    });
    assert.deepEqual(payloadFor(claims, "https://example.com/bar/:id"), {
      custom2: "data available for matching subscriptions",
    });
    assert.deepEqual(payloadFor(claims, "other"), {
      custom3: "default data for all other subscriptions",
    });
  });

  test('ignore authorization details of other types, the old type "mercure" included', async () => {
    const token = await accessToken(
      [
        { type: "payment_initiation", actions: ["pay"] },
        { type: "mercure", actions: ["publish"], topics: [{ match: "*" }] },
        { type: `${DETAIL}/`, actions: ["publish"], topics: [{ match: "*" }] },
      ],
      SECRET,
    );
    const claims = await auth.verify(token, "publisher", BASE);
    assert.deepEqual(claims.publish, []);
  });

  // [spec, draft-08] Hubs MUST ignore action values they do not recognize: an unrecognized
  // action grants nothing, and its presence does not invalidate the token.
  test("ignore an unknown action: it grants nothing and the token stays valid", async () => {
    const token = await accessToken(
      [detail(["publish", "admin"], [{ match: "a" }]), detail(["delete"], [{ match: "b" }])],
      SECRET,
    );
    const claims = await auth.verify(token, "publisher", BASE);
    assert.ok(coversAll(claims.publish, ["a"]));
    assert.ok(!coversAny(claims.publish, ["b"]));
    assert.deepEqual(claims.subscribe, []);
  });

  test("are refused without exp, with a wrong aud, a wrong iss, or before nbf", async () => {
    const grant = [detail(["publish"], [{ match: "*" }])];
    await rejects(
      auth.verify(
        await sign({ aud: AUDIENCE, iss: ISSUER, authorization_details: grant }, SECRET, {
          typ: "at+jwt",
        }),
        "publisher",
      ),
      /exp/,
    );
    await rejects(
      auth.verify(await accessToken(grant, SECRET, { aud: "https://other.example" }), "publisher"),
      /aud/,
    );
    await rejects(
      auth.verify(await accessToken(grant, SECRET, { iss: "https://evil.example" }), "publisher"),
      /iss/,
    );
    await rejects(
      auth.verify(await accessToken(grant, SECRET, { nbf: now() + 60 }), "publisher"),
      /nbf/,
    );
    // aud may be an array holding the resource identifier.
    const many = await accessToken(grant, SECRET, { aud: ["https://other.example", AUDIENCE] });
    assert.ok(coversAll((await auth.verify(many, "publisher")).publish, ["t"]));
  });

  test("are refused by a hub that has no resource identifier configured", async () => {
    const bare = new Authenticator({ publisherKey: SECRET });
    const grant = [detail(["publish"], [{ match: "*" }])];
    await rejects(
      bare.verify(await accessToken(grant, SECRET), "publisher"),
      /resource identifier/,
    );
  });

  test("are refused by a hub that has no trusted issuer configured, and without iss", async () => {
    const noIssuer = new Authenticator({ publisherKey: SECRET, audience: AUDIENCE });
    const grant = [detail(["publish"], [{ match: "*" }])];
    await rejects(noIssuer.verify(await accessToken(grant, SECRET), "publisher"), /trusted issuer/);
    const auth = new Authenticator({ publisherKey: SECRET, audience: AUDIENCE, issuer: ISSUER });
    await rejects(
      auth.verify(await accessToken(grant, SECRET, { iss: undefined } as never), "publisher"),
      /iss/,
    );
  });

  for (const [name, bad, reason] of [
    ["no actions", detail([], [{ match: "*" }]), /actions/],
    ["actions that are not an array", detail("publish" as never, [{ match: "*" }]), /actions/],
    ["a non-string action", detail(["publish", 7], [{ match: "*" }]), /not a string/],
    ["a null action", detail([null], [{ match: "*" }]), /not a string/],
    ["no topics", detail(["publish"], []), /topics/],
    ["topics that are not an array", detail(["publish"], "*"), /topics/],
    ["a topic that is a string", detail(["publish"], ["*"]), /object/],
    ["a matcher without match", detail(["publish"], [{ match_type: "exact" }]), /match string/],
    ["an empty match", detail(["publish"], [{ match: "" }]), /match string/],
    [
      "an unknown match_type",
      detail(["publish"], [{ match: "a", match_type: "regex" }]),
      /match_type/,
    ],
    [
      "a match_type in the wrong case",
      detail(["publish"], [{ match: "a", match_type: "URLPattern" }]),
      /match_type/,
    ],
    [
      "a match_type that is not a string",
      detail(["publish"], [{ match: "a", match_type: 1 }]),
      /match_type/,
    ],
    [
      "the old matchType spelling",
      detail(["publish"], [{ match: "a", matchType: "Exact" }]),
      /match_type/,
    ],
    [
      "an invalid URL pattern",
      detail(["publish"], [{ match: "https://x/(", match_type: "urlpattern" }]),
      /matcher/,
    ],
    [
      "a payload that is not an object",
      detail(["subscribe"], [{ match: "*" }], { payload: 3 }),
      /payload/,
    ],
    [
      "a payload that is an array",
      detail(["subscribe"], [{ match: "*" }], { payload: [] }),
      /payload/,
    ],
  ] as const) {
    // [spec, draft-08] If any Mercure authorization detail fails to parse or validate […] the
    // hub MUST reject the token the same way and MUST NOT act on the basis of the remaining
    // entries.
    test(`are refused whole when one detail has ${name}`, async () => {
      const good = detail(["publish"], [{ match: "*" }]);
      await rejects(auth.verify(await accessToken([good, bad], SECRET), "publisher", BASE), reason);
    });
  }

  test("are refused when authorization_details is not an array or holds a non-object", async () => {
    await rejects(
      auth.verify(await accessToken({} as never, SECRET), "publisher", BASE),
      /must be an array/,
    );
    await rejects(
      auth.verify(await accessToken(["x"], SECRET), "publisher", BASE),
      /must be an object/,
    );
  });

  test("are refused past the limits on details and topics", async () => {
    const topics = Array.from({ length: 257 }, (_, i) => ({ match: `t${i}` }));
    const token = await accessToken([detail(["publish"], topics)], SECRET);
    await rejects(auth.verify(token, "publisher", BASE), /more than 256/);
    const many = Array.from({ length: 65 }, () => detail(["publish"], [{ match: "a" }]));
    await rejects(auth.verify(await accessToken(many, SECRET), "publisher", BASE), /more than 64/);
  });
});

describe("HMAC secrets", () => {
  test("shorter than 32 bytes are refused with CRIER_ERR_INVALID_OPTION unless allowWeakKey is set", async () => {
    for (const options of [{ publisherKey: "k".repeat(31) }, { subscriberKey: "pass" }]) {
      assert.throws(
        () => new Authenticator(options),
        (err: unknown) =>
          isCrierError(err, "CRIER_ERR_INVALID_OPTION") &&
          /Key is an HMAC secret of \d+ bytes; use at least 32 random bytes.*set allowWeakKey$/.test(
            (err as Error).message,
          ),
      );
    }
    const weak = new Authenticator({ publisherKey: "pass", allowWeakKey: true });
    const token = await mintToken("pass", { publish: ["*"] });
    assert.ok(coversAll((await weak.verify(token, "publisher")).publish, ["t"]));
    new Authenticator({ publisherKey: "k".repeat(32), subscriberKey: rsa.publicPem });
  });
});

describe("JWK Sets", () => {
  test("verify a token by its kid, with no key of the role's own", async () => {
    const ec = ecKeys();
    const jwk = { ...(await exportJWK(ec.privateKey)), kid: "ec-1", alg: "ES256" };
    delete (jwk as { d?: string }).d;
    const withJwks = new Authenticator({ jwks: { keys: [jwk] } });
    const token = await sign({ mercure: { subscribe: ["a"] } }, ec.privateKey, { kid: "ec-1" });
    assert.ok(coversAny((await withJwks.verify(token, "subscriber")).subscribe, ["a"]));
    const other = await sign({ mercure: {} }, ecKeys().privateKey, { kid: "ec-2" });
    await rejects(withJwks.verify(other, "subscriber"), /no key of the JWK Set/);
  });

  test("never verify an HMAC, even with a symmetric key in the set", async () => {
    const withJwks = new Authenticator({
      jwks: { keys: [{ kty: "oct", k: Buffer.from(SECRET).toString("base64url"), kid: "s" }] },
    });
    const token = await sign({ mercure: { publish: ["*"] } }, SECRET, { kid: "s" });
    await rejects(withJwks.verify(token, "publisher"), /algorithm not allowed/);
  });
});

describe("presenting the token", () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
  const url = (query: string) => new URL(`http://hub/.well-known/mercure?${query}`);

  test("the Authorization header wins over the query parameter, which wins over the cookie", () => {
    const all = req({ authorization: "Bearer h", cookie: "mercureAuthorization=c" });
    assert.deepEqual(credentialOf(all, url("authorization=q"), true), {
      token: "h",
      via: "header",
    });
    const noHeader = req({ cookie: "mercureAuthorization=c" });
    assert.deepEqual(credentialOf(noHeader, url("access_token=q"), true), {
      token: "q",
      via: "query",
    });
    assert.deepEqual(credentialOf(noHeader, url("topic=x"), true), { token: "c", via: "cookie" });
  });

  test("reads the draft-08 and v0.x cookies, the __Secure- one first", () => {
    const both = req({
      cookie: "a=b; mercureAuthorization=old; __Secure-mercure_access_token=new%2Btoken",
    });
    assert.deepEqual(credentialOf(both), { token: "new+token", via: "cookie" });
    assert.equal(credentialOf(req({ cookie: "other=1" })), undefined);
  });

  test("refuses a token in the query unless the hub allows it", () => {
    assert.throws(
      () => credentialOf(req({}), url("authorization=q")),
      (err: unknown) => isCrierError(err, "CRIER_ERR_BAD_REQUEST"),
    );
  });
});
