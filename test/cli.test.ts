import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { jwtVerify } from "jose";
import { crier, KEY, serve, waitFor } from "./cli-harness.ts";
import { openStream, publish } from "./helpers.ts";

describe("the crier command", () => {
  test("mints a token with the mercure claim", async () => {
    const run = crier([
      "token",
      "--jwt-key",
      KEY,
      "--publish",
      "*",
      "--subscribe",
      "books",
      "--ttl",
      "60",
    ]);
    assert.equal(await run.exit, 0);
    const { payload } = await jwtVerify(run.stdout.trim(), new TextEncoder().encode(KEY));
    assert.deepEqual(payload.mercure, { publish: ["*"], subscribe: ["books"] });
    assert.equal(typeof payload.exp, "number");
  });

  test("mints a token that expires in an hour unless --ttl says otherwise, and warns at --ttl 0", async () => {
    const hour = crier(["token", "--jwt-key", KEY, "--publish", "*"]);
    assert.equal(await hour.exit, 0, hour.stderr);
    const { payload } = await jwtVerify(hour.stdout.trim(), new TextEncoder().encode(KEY));
    // iat and exp are each read from the clock, so a second may tick between them.
    assert.ok(Math.abs((payload.exp as number) - (payload.iat as number) - 3600) <= 1);
    assert.equal(hour.stderr, "");

    const never = crier(["token", "--jwt-key", KEY, "--publish", "*", "--ttl", "0"]);
    assert.equal(await never.exit, 0, never.stderr);
    const forever = await jwtVerify(never.stdout.trim(), new TextEncoder().encode(KEY));
    assert.equal(forever.payload.exp, undefined);
    assert.match(never.stderr, /^crier: warning: this token never expires \(--ttl 0\);.*\n$/);
  });

  test("mints a draft-08 access token that a hub with that audience and issuer accepts", async () => {
    const audience = "https://hub.example/.well-known/mercure";
    const issuer = "https://issuer.example";
    const run = crier([
      "token",
      "--draft-08",
      "--jwt-key",
      KEY,
      "--audience",
      audience,
      "--issuer",
      issuer,
      "--publish-urlpattern",
      "https://example.com/books/:id",
      "--subscribe",
      "*",
    ]);
    assert.equal(await run.exit, 0, run.stderr);
    const jwt = run.stdout.trim();
    const { payload, protectedHeader } = await jwtVerify(jwt, new TextEncoder().encode(KEY));
    assert.equal(protectedHeader.typ, "at+jwt");
    assert.equal(payload.aud, audience);
    assert.equal(payload.iss, issuer);
    assert.equal(typeof payload.exp, "number");
    assert.deepEqual(payload.authorization_details, [
      {
        type: "https://mercure.rocks/authorization-detail",
        actions: ["publish"],
        topics: [{ match: "https://example.com/books/:id", match_type: "urlpattern" }],
      },
      {
        type: "https://mercure.rocks/authorization-detail",
        actions: ["subscribe"],
        topics: [{ match: "*" }],
      },
    ]);
    const hub = await serve(["--jwt-issuer", issuer, "--jwt-audience", audience], {
      CRIER_JWT_KEY: KEY,
    });
    try {
      const ok = await publish(hub.url, { topic: "https://example.com/books/1" }, jwt);
      assert.equal(ok.status, 200);
      const other = await publish(hub.url, { topic: "https://example.com/users/1" }, jwt);
      assert.equal(other.status, 403);
    } finally {
      hub.run.child.kill("SIGTERM");
      await hub.run.exit;
    }
  });

  test("refuses draft-08 options without --draft-08, and --draft-08 without an audience or an issuer", async () => {
    const v0 = crier(["token", "--jwt-key", KEY, "--audience", "https://hub.example/"]);
    assert.notEqual(await v0.exit, 0);
    assert.match(v0.stderr, /--audience needs --draft-08/);
    const noAudience = crier(["token", "--jwt-key", KEY, "--draft-08", "--publish", "*"]);
    assert.notEqual(await noAudience.exit, 0);
    assert.match(noAudience.stderr, /--draft-08 needs --audience/);
    const noIssuer = crier([
      ...["token", "--jwt-key", KEY, "--draft-08", "--publish", "*"],
      ...["--audience", "https://hub.example/"],
    ]);
    assert.notEqual(await noIssuer.exit, 0);
    assert.match(noIssuer.stderr, /--draft-08 needs --issuer/);
  });

  test("serves, publishes and subscribes, and on SIGTERM closes every subscriber with a retry hint and exits 0", async () => {
    const { run, url } = await serve(["--anonymous", "--keep-alive", "1000"], {
      CRIER_JWT_KEY: KEY,
    });
    // The subscribe command resumes after a first update, so it receives the second whenever
    // it gets connected.
    const first = crier(["publish", "news", "zero", "--url", url, "--id", "n-0"], {
      CRIER_JWT_KEY: KEY,
    });
    assert.equal(await first.exit, 0, first.stderr);
    const sub = crier(["subscribe", "news", "--url", url, "--last-event-id", "n-0"]);
    const streams = await Promise.all([1, 2, 3].map(() => openStream(`${url}?topic=news`)));
    try {
      const pub = crier(["publish", "news", "line one\nline two", "--url", url, "--id", "n-1"], {
        CRIER_JWT_KEY: KEY,
      });
      assert.equal(await pub.exit, 0, pub.stderr);
      assert.equal(pub.stdout.trim(), "n-1");
      const line = await waitFor(
        () => sub.stdout.split("\n")[0] || undefined,
        "the subscribe command's output",
      );
      assert.deepEqual(JSON.parse(line), { id: "n-1", data: "line one\nline two" });
      for (const s of streams) assert.equal((await s.waitForEvents(1))[0]?.id, "n-1");

      run.child.kill("SIGTERM");
      assert.equal(await run.exit, 0);
      for (const s of streams) {
        await s.ended;
        assert.match(s.raw(), /retry: \d+\n\n$/);
      }
      assert.equal(await sub.exit, 0);
    } finally {
      run.child.kill("SIGKILL");
      sub.child.kill("SIGKILL");
      for (const s of streams) s.close();
    }
  });

  test("without a key, starts in an announced dev mode whose printed token publishes", async () => {
    const env = {
      CRIER_JWT_KEY: undefined,
      CRIER_PUBLISHER_JWT_KEY: undefined,
      CRIER_SUBSCRIBER_JWT_KEY: undefined,
      CRIER_JWKS: undefined,
    };
    const { run, url } = await serve([], env);
    try {
      const token = await waitFor(
        () => /Bearer ([\w.-]+)/.exec(run.stderr)?.[1],
        "the dev-mode token",
      );
      assert.match(run.stderr, /DEV MODE/);
      assert.match(run.stderr, /This token expires in 24 hours \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/);
      const { exp, iat } = JSON.parse(
        Buffer.from(token.split(".")[1] ?? "", "base64url").toString(),
      );
      assert.ok(Math.abs(exp - iat - 24 * 3600) <= 1);
      const s = await openStream(`${url}?topic=demo`); // anonymous subscribers are allowed
      assert.equal(s.status, 200);
      assert.equal((await publish(url, { topic: "demo", data: "hello" }, token)).status, 200);
      assert.equal((await s.waitForEvents(1))[0]?.data, "hello");
      s.close();
    } finally {
      run.child.kill("SIGTERM");
      await run.exit;
    }
  });

  test("on an IPv6 address, in dev mode too, names URLs that work", async () => {
    const env = { CRIER_JWT_KEY: undefined, CRIER_PUBLISHER_JWT_KEY: undefined };
    const { run, url } = await serve(["--host", "::1", "--metrics", "--metrics-port", "0"], env);
    try {
      assert.match(url, /^http:\/\/\[::1\]:\d+\/\.well-known\/mercure$/);
      await waitFor(() => /DEV MODE/.exec(run.stderr) ?? undefined, "the dev-mode banner");
      const metrics = await waitFor(
        () => /metrics on (http:\/\/\[::1\]:\d+\/metrics)/.exec(run.stdout)?.[1],
        "the metrics URL",
      );
      assert.equal((await fetch(new URL("/healthz", url))).status, 200);
      assert.equal((await fetch(metrics)).status, 200);
      run.child.kill("SIGTERM");
      assert.equal(await run.exit, 0, run.stderr);
    } finally {
      run.child.kill("SIGKILL");
    }
  });

  test("refuses anonymous subscribers unless --anonymous is given", async () => {
    const { run, url } = await serve([], { CRIER_JWT_KEY: KEY });
    try {
      const s = await openStream(`${url}?topic=x`);
      assert.equal(s.status, 401);
      s.close();
    } finally {
      run.child.kill("SIGTERM");
      await run.exit;
    }
  });

  test("rejects a bad flag or environment value with exit code 2 and the reason", async () => {
    const bad = crier(["--keep-alive", "soon"], { CRIER_JWT_KEY: KEY });
    assert.equal(await bad.exit, 2);
    assert.match(bad.stderr, /--keep-alive must be an integer/);
    const env = crier([], { CRIER_JWT_KEY: KEY, CRIER_PORT: "99999" });
    assert.equal(await env.exit, 2);
    assert.match(env.stderr, /^crier: CRIER_PORT must be an integer from 0 to 65535, got 99999\n/);
    const unknown = crier(["--frobnicate"]);
    assert.equal(await unknown.exit, 2);
  });

  test("prints its version with --version and version", async () => {
    for (const args of [["--version"], ["version"]]) {
      const run = crier(args);
      assert.equal(await run.exit, 0);
      assert.match(run.stdout, /^crier \d+\.\d+\.\d+\S* \(Node\.js v\d+/);
    }
  });

  test("prints each client command's own usage with --help, and exits 0", async () => {
    for (const command of ["publish", "subscribe", "token"]) {
      const run = crier([command, "--help"]);
      assert.equal(await run.exit, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`^Usage: crier ${command} `));
      assert.doesNotMatch(run.stdout, /--max-subscribers/, "not the hub's usage");
    }
    const token = crier(["token", "--help"]);
    assert.equal(await token.exit, 0);
    assert.match(token.stdout, /--draft-08 --audience HUB_URL --issuer ISS/);
    // The hub's usage, wherever --help is among its flags.
    const hub = crier(["--port", "8080", "--help"]);
    assert.equal(await hub.exit, 0, hub.stderr);
    assert.match(hub.stdout, /^Usage:\n {2}crier \[flags\]/);
  });

  test("names the hub's URL and the cause when it cannot reach it, never its query", async () => {
    const { createServer } = await import("node:net");
    const server = createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const url = `http://127.0.0.1:${port}/.well-known/mercure`;
    const run = crier([
      "publish",
      "a",
      "b",
      "--url",
      `${url}?authorization=secret`,
      "--token",
      "t",
    ]);
    assert.equal(await run.exit, 1);
    assert.equal(run.stderr, `crier: cannot reach the hub at ${url}: ECONNREFUSED\n`);
  });

  test("refuses a hub URL that is none, or holds a password, and a --ttl past 100 years, as usage errors", async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ["publish", "a", "b", "--token", "t", "--url", "notaurl"],
        {},
        /^crier: --url must be the hub's URL/,
      ],
      [
        ["subscribe", "a", "--url", "ftp://h/x"],
        {},
        /^crier: --url must be an http: or https: URL/,
      ],
      [
        [
          "publish",
          "a",
          "b",
          "--token",
          "t",
          "--url",
          "http://user:pw@127.0.0.1:1/x?authorization=SECRET",
        ],
        {},
        /^crier: --url must not hold a user or password/,
      ],
      [
        ["publish", "a", "b", "--token", "t"],
        { CRIER_PORT: "abc" },
        /^crier: CRIER_PORT must be a port number/,
      ],
      [
        ["publish", "a", "b", "--token", "t"],
        { CRIER_PORT: "99999" },
        /^crier: CRIER_PORT must be a port number, got "99999"\n$/,
      ],
      [
        ["token", "--jwt-key", KEY, "--ttl", "99999999999999999999"],
        {},
        /^crier: --ttl must be whole seconds, up to/,
      ],
    ];
    for (const [args, env, reason] of cases) {
      const run = crier(args, env);
      assert.equal(await run.exit, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, reason);
      assert.doesNotMatch(run.stderr, /pw@|SECRET/);
      if (!args.includes("--ttl")) assert.doesNotMatch(run.stderr, /Usage:/, "the reason alone");
    }
  });
});
