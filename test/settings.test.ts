import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { withSettingsTable } from "../scripts/readme-settings.ts";
import { parseServeConfig, Settings } from "../src/cli/config.ts";
import { SETTINGS, settingsHelp } from "../src/cli/settings.ts";
import { corsOriginsOf, natsUrlOf, redact, redisUrlOf } from "../src/cli/urls.ts";

describe("the settings table", () => {
  test("the README's configuration table is the one the settings table makes (npm run docs)", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    assert.equal(readme, withSettingsTable(readme));
  });

  test("names every variable CRIER_ and the flag in upper snake case, and lists each in --help", () => {
    const help = settingsHelp();
    for (const [name, setting] of Object.entries(SETTINGS)) {
      assert.equal(setting.env, `CRIER_${name.toUpperCase().replaceAll("-", "_")}`);
      assert.match(help, new RegExp(`--${name} +${setting.env} `));
      if (setting.type === "integer") assert.ok(setting.min !== undefined, name);
    }
  });

  test("reads a flag before its variable, and the default when both are absent or empty", () => {
    const env = { CRIER_PORT: "9000", CRIER_HISTORY_SIZE: "" };
    assert.equal(new Settings(["--port", "9001"], env).integer("port"), 9001);
    assert.equal(new Settings([], env).integer("port"), 9000);
    assert.equal(new Settings([], env).integer("history-size"), 10_000);
    assert.equal(new Settings([], {}).text("redis-prefix"), "crier:");
  });

  test("takes the last of a switch's flags, spelled or bare, as for any other setting", () => {
    assert.equal(new Settings(["--anonymous=no", "--anonymous"], {}).boolean("anonymous"), true);
    assert.equal(new Settings(["--anonymous", "--anonymous=no"], {}).boolean("anonymous"), false);
    assert.equal(new Settings(["--metrics=off", "--metrics=on"], {}).boolean("metrics"), true);
    assert.equal(new Settings(["--port", "1", "--port", "2"], {}).integer("port"), 2);
  });

  test("turns pushback on by default, sets its thresholds, and turns it off with --pushback=off", () => {
    const key = `--jwt-key=${"k".repeat(32)}`;
    assert.deepEqual(parseServeConfig([key], {}).hub.pushback, { holdMs: 100, refuseMs: 1000 });
    assert.deepEqual(
      parseServeConfig([key, "--pushback-hold", "20", "--pushback-refuse", "400"], {}).hub.pushback,
      { holdMs: 20, refuseMs: 400 },
    );
    assert.equal(parseServeConfig([key, "--pushback=off"], {}).hub.pushback, false);
    assert.equal(parseServeConfig([key], { CRIER_PUSHBACK: "false" }).hub.pushback, false);
    assert.throws(
      () => parseServeConfig([key, "--pushback-hold", "500", "--pushback-refuse", "100"], {}),
      /--pushback-refuse \(100 ms\) must be at least --pushback-hold \(500 ms\)/,
    );
  });

  test("sets the flush window, 5 ms by default, 0 to flush every turn", () => {
    const key = `--jwt-key=${"k".repeat(32)}`;
    assert.equal(parseServeConfig([key], {}).hub.flushWindowMs, 5);
    assert.equal(parseServeConfig([key, "--flush-window", "0"], {}).hub.flushWindowMs, 0);
    assert.equal(parseServeConfig([key], { CRIER_FLUSH_WINDOW: "20" }).hub.flushWindowMs, 20);
    assert.throws(
      () => parseServeConfig([key, "--flush-window", "1001"], {}),
      /--flush-window must be an integer from 0 to 1000/,
    );
  });

  test("passes the Redis replay settings to the backplane, with their defaults", () => {
    const key = `--jwt-key=${"k".repeat(32)}`;
    const redis = ["--redis", "redis://cache:6379"];
    const defaults = parseServeConfig([key, ...redis], {}).redis;
    assert.equal(defaults?.replayConcurrency, 16);
    assert.equal(defaults?.replayPageSize, 256);
    assert.equal(defaults?.replayTimeoutMs, 5000);
    const set = parseServeConfig([key, ...redis, "--redis-replay-concurrency", "4"], {
      CRIER_REDIS_REPLAY_PAGE_SIZE: "64",
      CRIER_REDIS_REPLAY_TIMEOUT: "2000",
    }).redis;
    assert.equal(set?.replayConcurrency, 4);
    assert.equal(set?.replayPageSize, 64);
    assert.equal(set?.replayTimeoutMs, 2000);
    assert.throws(
      () => parseServeConfig([key, ...redis, "--redis-replay-concurrency", "0"], {}),
      /--redis-replay-concurrency must be an integer from 1 to 1024/,
    );
  });

  test("refuses an integer out of its range or not a whole number, naming the flag", () => {
    for (const port of ["65536", "-1", "80.5", "0x50", "eighty"]) {
      assert.throws(
        () => parseServeConfig([`--port=${port}`, `--jwt-key=${"k".repeat(32)}`], {}),
        (err: Error) => /--port must be an integer from 0 to 65535/.test(err.message),
        port,
      );
    }
  });

  test("reads a boolean from its documented spellings in any case, and a bare flag as true", () => {
    for (const word of ["1", "true", "YES", "On"]) {
      assert.equal(new Settings([], { CRIER_ANONYMOUS: word }).boolean("anonymous"), true, word);
      assert.equal(new Settings([`--anonymous=${word}`], {}).boolean("anonymous"), true, word);
    }
    for (const word of ["0", "False", "no", "OFF"]) {
      assert.equal(new Settings([], { CRIER_ANONYMOUS: word }).boolean("anonymous"), false, word);
      assert.equal(new Settings([`--anonymous=${word}`], {}).boolean("anonymous"), false, word);
    }
    assert.equal(
      new Settings(["--anonymous"], { CRIER_ANONYMOUS: "no" }).boolean("anonymous"),
      true,
    );
    assert.equal(new Settings([], {}).boolean("anonymous"), false);
    for (const word of ["n", "disabled", "2", " yes"]) {
      assert.throws(
        () => new Settings([], { CRIER_ANONYMOUS: word }).boolean("anonymous"),
        /CRIER_ANONYMOUS must be one of 1\/0, true\/false, yes\/no, on\/off/,
        word,
      );
    }
  });

  test("takes origins as a browser sends them, and * alone, refusing anything else", () => {
    const ok = corsOriginsOf(" https://app.example ,http://localhost:3000,*,", "--cors-origins");
    assert.deepEqual(ok, ["https://app.example", "http://localhost:3000", "*"]);
    for (const bad of [
      "app.example",
      "https://app.example/",
      "https://app.example?x",
      "https://App.example",
      "https://app.example:443",
      "ftp://app.example",
      "https://*.example",
      "https://user@app.example",
    ]) {
      assert.throws(() => corsOriginsOf(bad, "--cors-origins"), /is not an origin/, bad);
    }
  });

  test("takes redis:// and rediss:// URLs and redacts the password of any other", () => {
    assert.equal(redisUrlOf("rediss://:pw@cache:6380/1", "--redis"), "rediss://:pw@cache:6380/1");
    for (const bad of ["notaurl", "127.0.0.1:6379", "redis:///0", "redis//:s3cret@host"]) {
      assert.throws(
        () => redisUrlOf(bad, "--redis"),
        (err: Error) => /must be a redis:\/\//.test(err.message) && !err.message.includes("s3cret"),
        bad,
      );
    }
    assert.equal(redact("redis://user:pw@host:6379"), "redis://***@host:6379");
    // A raw `@` in the password: everything up to the last one is user information.
    assert.equal(redact("redis://:ab@s3cret@127.0.0.1:6379/0"), "redis://***@127.0.0.1:6379/0");
    // Credentials in the query, which ioredis reads as options.
    assert.equal(
      redact("redis+sentinel://h:26379/m?sentinelPassword=s3cret&db=1&password=s3cret#x"),
      "redis+sentinel://h:26379/m?sentinelPassword=***&db=1&password=***#x",
    );
    assert.equal(
      redact("redis://127.0.0.1:6379/0?password=s3cret"),
      "redis://127.0.0.1:6379/0?password=***",
    );
    assert.equal(redact("redis://127.0.0.1:6379/2"), "redis://127.0.0.1:6379/2");
    // A raw `?`, `#` or `/` in the password: the URL does not parse, and is shown in the refusal.
    for (const odd of [
      "redis://:pa?s3cret@host:6379",
      "redis://:pa#s3cret@h",
      "redis://:p/s3cret@h",
    ]) {
      assert.doesNotMatch(redact(odd), /s3cret/, odd);
    }
    assert.equal(redact("nats://tok3n@nats:4222"), "nats://***@nats:4222");
  });

  test("takes nats:// and tls:// URLs, with the history size as the stream's length", () => {
    assert.equal(natsUrlOf("tls://u:pw@nats:4222", "--nats"), "tls://u:pw@nats:4222");
    for (const bad of ["notaurl", "127.0.0.1:4222", "redis://nats:4222", "nats//:s3cret@h"]) {
      assert.throws(
        () => natsUrlOf(bad, "--nats"),
        (err: Error) => /must be a nats:\/\//.test(err.message) && !err.message.includes("s3cret"),
        bad,
      );
    }
    const key = "a-secret-of-at-least-thirty-two-bytes!!";
    const config = parseServeConfig(
      ["--jwt-key", key, "--nats", "nats://n:4222", "--history-size", "500", "--workers", "2"],
      { CRIER_NATS_MAX_AGE: "60000" },
    );
    assert.deepEqual(config.nats, {
      url: "nats://n:4222",
      stream: "crier",
      maxLen: 500,
      maxAgeMs: 60_000,
    });
    assert.throws(
      () => parseServeConfig(["--jwt-key", key, "--nats", "nats://n", "--redis", "redis://r"], {}),
      /--redis and --nats each say where the history is; give one/,
    );
    assert.throws(
      () => parseServeConfig(["--jwt-key", key, "--nats", "nats://n", "--history-size", "0"], {}),
      /--history-size must be at least 1 with --nats/,
    );
    // What the connection or the server would refuse 10 s later, as "cannot reach NATS".
    assert.throws(
      () =>
        parseServeConfig(["--jwt-key", key, "--nats", "nats://n"], { CRIER_NATS_MAX_AGE: "50" }),
      /^CrierError: CRIER_NATS_MAX_AGE must be 0 \(off\) or at least 100 ms/,
    );
    assert.throws(
      () => parseServeConfig(["--jwt-key", key, "--nats", "nats://u:s3cret%zz@n:4222"], {}),
      (err: Error) =>
        /^--nats: the NATS URL .* has a password that is not percent-encoded/.test(err.message) &&
        !err.message.includes("s3cret"),
    );
  });
});
