import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { jwtVerify } from "jose";
import { openStream, publish, sleep } from "./helpers.ts";

const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const KEY = "cli-test-secret-cli-test-secret-123";

interface Run {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exit: Promise<number | null>;
}

function crier(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const run: Run = {
    child,
    stdout: "",
    stderr: "",
    exit: once(child, "exit").then(([code]) => code as number | null),
  };
  child.stdout?.on("data", (d: Buffer) => (run.stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (run.stderr += d.toString()));
  return run;
}

async function waitFor<T>(get: () => T | undefined, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Starts `crier` on a free port and resolves with its Mercure URL. */
async function serve(args: string[], env: Record<string, string> = {}) {
  const run = crier(["--port", "0", "--host", "127.0.0.1", ...args], env);
  const url = await waitFor(
    () => /listening on (\S+)/.exec(run.stderr)?.[1],
    `the hub to listen: ${run.stderr}`,
  );
  return { run, url };
}

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

  test("refuses draft-08 options without --draft-08, and --draft-08 without an audience", async () => {
    const v0 = crier(["token", "--jwt-key", KEY, "--audience", "https://hub.example/"]);
    assert.notEqual(await v0.exit, 0);
    assert.match(v0.stderr, /--audience needs --draft-08/);
    const noAudience = crier(["token", "--jwt-key", KEY, "--draft-08", "--publish", "*"]);
    assert.notEqual(await noAudience.exit, 0);
    assert.match(noAudience.stderr, /--draft-08 needs --audience/);
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
