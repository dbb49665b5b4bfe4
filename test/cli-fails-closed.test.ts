import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { crier, serve, waitFor } from "./cli-harness.ts";
import { openStream } from "./helpers.ts";

const KEY = "cli-test-secret-cli-test-secret-123";

/** Runs `crier` and checks it exits 2 with `reason` as the one line on stderr. */
async function refused(args: string[], env: Record<string, string>, reason: RegExp) {
  const run = crier(args, { CRIER_JWT_KEY: KEY, ...env });
  assert.equal(await run.exit, 2, run.stderr);
  const [first = "", ...rest] = run.stderr.split("\n");
  assert.match(first, reason);
  // The reason names the setting: the usage after it would bury it.
  assert.deepEqual(rest, [""], "one line, no usage after it");
  return first;
}

describe("the crier command refuses a configuration mistake instead of starting", () => {
  test("prints the usage after a command line it cannot read, and not after a wrong value", async () => {
    const run = crier(["--no-such-flag"], { CRIER_JWT_KEY: KEY });
    assert.equal(await run.exit, 2);
    assert.match(run.stderr, /^crier: Unknown option '--no-such-flag'.*\n\nUsage:\n/);
  });

  test("refuses a boolean variable spelt in no documented way, naming it and the accepted values", async () => {
    await refused(
      [],
      { CRIER_ANONYMOUS: "nope" },
      /^crier: CRIER_ANONYMOUS must be one of 1\/0, true\/false, yes\/no, on\/off \(any case\), got "nope"$/,
    );
    await refused(
      ["--subscriptions=maybe"],
      {},
      /^crier: --subscriptions must be one of .*"maybe"$/,
    );
  });

  test("reads CRIER_ANONYMOUS=no as off, so subscribers without a token are refused", async () => {
    const { run, url } = await serve([], { CRIER_JWT_KEY: KEY, CRIER_ANONYMOUS: "No" });
    try {
      const s = await openStream(`${url}?topic=x`);
      assert.equal(s.status, 401);
      s.close();
    } finally {
      run.child.kill("SIGTERM");
      await run.exit;
    }
  });

  test("refuses a key that names a missing file or a directory, naming the path", async () => {
    const missing = join(tmpdir(), `crier-missing-${process.pid}`, "publisher.pem");
    await refused(
      ["--jwt-key", missing],
      {},
      new RegExp(
        `^crier: --jwt-key: ${missing} does not exist; give the path of a readable key file, or the key itself$`,
      ),
    );
    await refused(
      [],
      { CRIER_PUBLISHER_JWT_KEY: "./no-such-publisher.key" },
      /^crier: CRIER_PUBLISHER_JWT_KEY: \.\/no-such-publisher\.key does not exist;/,
    );
    await refused(["--jwt-key", tmpdir()], {}, /^crier: --jwt-key: \S+ is a directory;/);
  });

  test("refuses an HMAC secret shorter than 32 bytes, naming the fix", async () => {
    await refused(
      [],
      { CRIER_JWT_KEY: "x" },
      /^crier: CRIER_JWT_KEY is an HMAC secret of 1 byte; use at least 32 random bytes \(openssl rand -hex 32\), or pass --allow-weak-key$/,
    );
  });

  test("refuses a Redis setting that is not a redis:// URL, with its password redacted", async () => {
    await refused(
      ["--redis", "notaurl"],
      {},
      /^crier: --redis must be a redis:\/\/, rediss:\/\/, redis\+sentinel:\/\/host:port,…\/name or redis\+cluster:\/\/host:port,… URL such as redis:\/\/127\.0\.0\.1:6379, got "notaurl"$/,
    );
    const line = await refused(
      [],
      { CRIER_REDIS: "http://user:hunter2@redis.example:6379" },
      /^crier: CRIER_REDIS must be a redis:\/\/, rediss:\/\/, .* URL .*, got "http:\/\/\*\*\*@redis\.example:6379"$/,
    );
    assert.doesNotMatch(line, /hunter2/);
  });

  test("refuses a CORS entry that is not an origin or *", async () => {
    await refused(
      ["--cors-origins", "foo"],
      {},
      /^crier: --cors-origins: "foo" is not an origin; give scheme:\/\/host\[:port\] .*, or \* alone$/,
    );
    await refused(
      [],
      { CRIER_CORS_ORIGINS: "https://app.example, https://app.example/path" },
      /^crier: CRIER_CORS_ORIGINS: "https:\/\/app\.example\/path" is not an origin;/,
    );
  });

  // `--jwt-key "$KEY"` with KEY unset used to start the hub in dev mode: anonymous subscribers,
  // an open dashboard and a printed publisher token.
  test("refuses an empty key flag, and an empty key variable that would leave no key at all", async () => {
    for (const [args, from] of [
      [["--jwt-key="], "--jwt-key"],
      [["--jwt-key", ""], "--jwt-key"],
      [["--jwks="], "--jwks"],
    ] as const) {
      await refused(
        [...args],
        {},
        new RegExp(`^crier: ${from} is empty: give a value, or leave it out$`),
      );
    }
    for (const env of [
      { CRIER_JWT_KEY: "" },
      { CRIER_JWT_KEY: "", CRIER_SUBSCRIBER_JWT_KEY: "" },
    ]) {
      await refused(
        [],
        env,
        /^crier: CRIER_JWT_KEY is set but empty and no other key is given: the hub would start in dev mode \(anonymous subscribers, an open dashboard\); give the key, or unset the variable for dev mode$/,
      );
    }
  });

  test("refuses an engine's or HTTPS's setting given without the engine or HTTPS", async () => {
    await refused(
      ["--redis-max-len=-5"],
      {},
      /^crier: --redis-max-len needs --redis \(CRIER_REDIS\): without Redis the setting means nothing$/,
    );
    await refused([], { CRIER_REDIS_PREFIX: "app:" }, /^crier: CRIER_REDIS_PREFIX needs --redis /);
    await refused(
      ["--pushback-hold", "500"],
      { CRIER_PUSHBACK_REFUSE: "100" },
      /^crier: CRIER_PUSHBACK_REFUSE \(100 ms\) must be at least --pushback-hold \(500 ms\)$/,
    );
    await refused(
      ["--nats-max-age", "abc"],
      {},
      /^crier: --nats-max-age needs --nats \(CRIER_NATS\)/,
    );
    await refused(
      ["--max-streams-per-connection", "10"],
      {},
      /^crier: --max-streams-per-connection needs --tls-cert \(CRIER_TLS_CERT\): only HTTPS serves HTTP\/2$/,
    );
  });

  test("refuses settings that contradict each other, in the command line's words", async () => {
    await refused(
      ["--headers-timeout", "20000", "--request-timeout", "10000"],
      {},
      /^crier: --headers-timeout \(20000 ms\) must not exceed --request-timeout \(10000 ms\): the headers are part of the request$/,
    );
    await refused(
      ["--port", "3999"],
      { CRIER_METRICS_PORT: "3999" },
      /^crier: CRIER_METRICS_PORT is the hub's own port \(3999\): give another, or use --metrics/,
    );
  });

  test("refuses a PEM key file that holds no usable key, naming the setting", async () => {
    const file = join(tmpdir(), `crier-bad-${process.pid}.pem`);
    writeFileSync(
      file,
      "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n",
    );
    try {
      await refused(
        ["--publisher-jwt-key", file, "--subscriber-jwt-key", KEY],
        {},
        /^crier: --publisher-jwt-key is a PEM block but no usable public key or certificate \(/,
      );
    } finally {
      rmSync(file, { force: true });
    }
  });

  test("refuses a base64 secret that reads as a path without printing it, and names a missing file", async () => {
    const secret = "/+VwTJLjshHGjjja+0DLvBc28IpEZVDZpIzLtA5ibhs=";
    const line = await refused(
      ["--jwt-key", secret],
      {},
      /^crier: --jwt-key starts with "\/" so it reads as a file path, and no such file exists; .*\(openssl rand -hex 32\)$/,
    );
    assert.doesNotMatch(line, /VwTJ/);
    // `openssl rand -base64 48`: 64 characters, no padding, and here no `+` either.
    const unpadded = "/q9ZfR2kLx7Wm4TbN8vYc1HsJ0dEaGuPi3oKl5nBw6Xy2Mz7Ae4Rf9Tg1Hj8Uk3V";
    const quiet = await refused(
      [],
      { CRIER_JWT_KEY: unpadded },
      /^crier: CRIER_JWT_KEY starts with "\/" so it reads as a file path, and no such file exists;/,
    );
    assert.doesNotMatch(quiet, /q9ZfR2k|Uk3V/);
    await refused(
      [],
      { CRIER_JWT_KEY: "/mnt/secrets/crier/hub-2024/production_hmac" },
      /^crier: CRIER_JWT_KEY: \/mnt\/secrets\/crier\/hub-2024\/production_hmac does not exist; give the path/,
    );
  });

  test("refuses any other flag given empty, and reads an empty variable as unset", async () => {
    await refused(["--port="], {}, /^crier: --port is empty: give a value, or leave it out$/);
    await refused(["--host", ""], {}, /^crier: --host is empty: give a value, or leave it out$/);
    await refused(["--redis="], {}, /^crier: --redis is empty: give a value, or leave it out$/);
    const { run, url } = await serve([], {
      CRIER_JWT_KEY: KEY,
      CRIER_REDIS: "",
      CRIER_CORS_ORIGINS: "",
    });
    assert.equal((await fetch(new URL("/healthz", url))).status, 200);
    run.child.kill("SIGTERM");
    assert.equal(await run.exit, 0, run.stderr);
  });

  test("refuses a public origin that is not an origin", async () => {
    await refused(
      ["--public-origin", "https://hub.example/.well-known/mercure"],
      {},
      /^crier: --public-origin: "https:\/\/hub\.example\/\.well-known\/mercure" is not an origin; give scheme:\/\/host\[:port\] /,
    );
    await refused(
      [],
      { CRIER_PUBLIC_ORIGIN: "hub.example" },
      /^crier: CRIER_PUBLIC_ORIGIN: "hub\.example" is not an origin;/,
    );
  });

  test("serves with a short secret when --allow-weak-key is given", async () => {
    const run = crier(["--port", "0", "--allow-weak-key"], { CRIER_JWT_KEY: "x" });
    let exited = false;
    void run.exit.then(() => (exited = true));
    await waitFor(() => (exited || /listening on/.test(run.stdout) ? true : undefined), "a start");
    run.child.kill("SIGTERM");
    await run.exit;
    assert.match(run.stdout, /listening on/);
  });
});
