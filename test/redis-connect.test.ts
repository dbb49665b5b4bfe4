import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RedisBackplane } from "../src/backplane/redis.ts";
import { parseRedisUrl } from "../src/backplane/redis-connect.ts";
import { keyBase } from "../src/history/redis-keys.ts";

describe("Redis URLs", () => {
  test("reads one server, a primary behind Sentinel and a Cluster", () => {
    assert.deepEqual(parseRedisUrl("rediss://:pw@cache:6380/1"), {
      kind: "single",
      url: "rediss://:pw@cache:6380/1",
    });
    assert.deepEqual(parseRedisUrl("redis+sentinel://s1:26379,10.0.0.2:26380/mymaster"), {
      kind: "sentinel",
      sentinels: [
        { host: "s1", port: 26379 },
        { host: "10.0.0.2", port: 26380 },
      ],
      name: "mymaster",
      db: 0,
      tls: false,
    });
    assert.deepEqual(parseRedisUrl("rediss+sentinel://app:p%40ss@[::1]:26379/main/3"), {
      kind: "sentinel",
      sentinels: [{ host: "::1", port: 26379 }],
      name: "main",
      db: 3,
      tls: true,
      username: "app",
      password: "p@ss",
    });
    assert.deepEqual(parseRedisUrl("redis+cluster://:secret@n1:7000,n2:7001"), {
      kind: "cluster",
      nodes: [
        { host: "n1", port: 7000 },
        { host: "n2", port: 7001 },
      ],
      tls: false,
      password: "secret",
    });
  });

  test("refuses a shape it cannot serve, naming why and hiding the password", () => {
    const cases: [string, RegExp][] = [
      ["redis+sentinel://:s3cret@s1:26379", /needs the primary's name/],
      ["redis+sentinel://s1:26379/main/x", /needs the primary's name/],
      ["redis+sentinel://s1/main", /"s1" is not host:port/],
      ["redis+cluster://n1:7000/0", /a Redis Cluster has no databases/],
      ["redis+cluster://n1:99999", /"n1:99999" is not host:port/],
      ["redis+pubsub://n1:7000", /^--redis must be a redis:\/\//],
      [
        "redis+sentinel://u:s3cret%zz@s1:26379/main",
        /\(the password is not percent-encoded UTF-8\)/,
      ],
      ["redis+sentinel://u%FF:s3cret@s1:26379/main", /the user name is not percent-encoded/],
      ["redis+sentinel://s1:26379/my%zzmaster", /the primary's name is not percent-encoded/],
      ["redis+cluster://:s3cret%@n1:7000", /the password is not percent-encoded/],
      // A "/" in a password cuts the URL there: what is left of it must not be quoted.
      [
        "redis+cluster://admin:s3c/ret@127.0.0.1:7301",
        /"\/", "\?", "#" and "@" are percent-encoded/,
      ],
      [
        "redis+sentinel://admin:s3c/ret@s1:26379/main",
        /"\/", "\?", "#" and "@" are percent-encoded/,
      ],
    ];
    for (const [bad, reason] of cases) {
      assert.throws(
        () => parseRedisUrl(bad, "--redis"),
        (err: Error & { code?: string }) =>
          err.code === "CRIER_ERR_INVALID_OPTION" &&
          reason.test(err.message) &&
          !err.message.includes("s3cret") &&
          !err.message.includes("s3c") &&
          !err.message.includes("admin"),
        bad,
      );
    }
  });
});

describe("the Redis key prefix", () => {
  test("keeps every key of a prefix in one Cluster slot, and refuses one that cannot", () => {
    assert.equal(keyBase("crier:"), "{crier:}");
    assert.equal(keyBase("{app}:crier:"), "{app}:crier:");
    assert.equal(keyBase("a}b"), "{a}b}");
    // `{}x}` and `{}` hash every key whole (CROSSSLOT on every publish).
    for (const bad of ["}x", "}", ""]) {
      assert.throws(() => keyBase(bad), {
        code: "CRIER_ERR_INVALID_OPTION",
        message: /cannot keep its keys in one Cluster slot: it must not be empty or start with "}"/,
      });
    }
  });
});

describe("RedisBackplane options", () => {
  test("refuses waitReplicas with a Cluster, whose WAIT would reach another primary", () => {
    assert.throws(
      () => new RedisBackplane({ url: "redis+cluster://127.0.0.1:7000", waitReplicas: 1 }),
      {
        code: "CRIER_ERR_INVALID_OPTION",
        message: /waitReplicas cannot be used with a Redis Cluster/,
      },
    );
  });
});

describe("Redis keys", () => {
  test("every key of a prefix carries the prefix as one hash tag", () => {
    assert.equal(keyBase("crier:"), "{crier:}");
    assert.equal(keyBase("crier:prod:"), "{crier:prod:}");
    // An operator's own tag is kept; an empty "{}" is no tag to Redis, so it is wrapped.
    assert.equal(keyBase("{app}:crier:"), "{app}:crier:");
    assert.equal(keyBase("a{}b"), "{a{}b}");
  });
});
