import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { jwtVerify } from "jose";
import { crier, serve, waitFor } from "./cli-harness.ts";
import { openStream, publish } from "./helpers.ts";

const KEY = "cli-test-secret-cli-test-secret-123";

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
    const env = { CRIER_JWT_KEY: "", CRIER_PUBLISHER_JWT_KEY: "", CRIER_SUBSCRIBER_JWT_KEY: "" };
    const { run, url } = await serve([], env);
    try {
      const token = await waitFor(
        () => /Bearer ([\w.-]+)/.exec(run.stderr)?.[1],
        "the dev-mode token",
      );
      assert.match(run.stderr, /DEV MODE/);
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
    assert.match(env.stderr, /--port must be an integer/);
    const unknown = crier(["--frobnicate"]);
    assert.equal(await unknown.exit, 2);
  });
});
