import assert from "node:assert/strict";
import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { afterEach, describe, test } from "node:test";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { pretty } from "../src/ops/log.ts";
import { crier, KEY, type Run, serve, waitFor } from "./cli-harness.ts";
import { openStream, publish } from "./helpers.ts";

describe("the hub's log", () => {
  let run: Run | undefined;
  afterEach(async () => {
    run?.child.kill("SIGKILL");
    await run?.exit;
  });

  test("holds no key, token, cookie value or authorization query parameter, at debug", async () => {
    const started = await serve(
      ["--jwt-key", KEY, "--authorization-query", "--log-level", "debug", "--log-format", "json"],
      { CRIER_REDIS: "" },
    );
    run = started.run;
    const { url } = started;
    const secrets = {
      header: await mintToken(KEY, { subscribe: ["*"], ttlSeconds: 600 }),
      cookie: await mintToken(KEY, { subscribe: ["a"], ttlSeconds: 601 }),
      query: await mintToken(KEY, { subscribe: ["b"], ttlSeconds: 602 }),
      publisher: await mintToken(KEY, { publish: ["*"], ttlSeconds: 603 }),
      narrow: await mintToken(KEY, { publish: ["z"], ttlSeconds: 604 }),
      forged: `${(await mintToken(KEY, { publish: ["*"] })).slice(0, -4)}AAAA`,
    };
    const streams = [
      await openStream(`${url}?topic=a`, { Authorization: `Bearer ${secrets.header}` }),
      await openStream(`${url}?topic=a`, { Cookie: `mercureAuthorization=${secrets.cookie}` }),
      await openStream(`${url}?topic=a&authorization=${secrets.query}`),
    ];
    for (const stream of streams) await stream.waitForComment();
    assert.equal((await publish(url, { topic: "a", data: "x" }, secrets.publisher)).status, 200);
    assert.equal((await publish(url, { topic: "a", data: "x" }, secrets.narrow)).status, 403);
    assert.equal((await publish(url, { topic: "a", data: "x" }, secrets.forged)).status, 401);
    const refused = await openStream(`${url}?topic=a&authorization=${secrets.forged}`);
    assert.equal(refused.status, 401);
    for (const stream of streams) stream.close();
    await waitFor(
      () => ((run?.stdout.match(/subscriber disconnected/g) ?? []).length >= 3 ? true : undefined),
      "the disconnects to be logged",
    );
    const log = (run as Run).stdout;
    const lines = log.trim().split("\n");
    for (const line of lines) JSON.parse(line);
    assert.match(log, /"msg":"starting"/);
    assert.match(log, /"topics":1,"msg":"published"/);
    assert.match(log, /"status":403.*"address":"127\.0\.0\.1"/);
    assert.match(log, /"status":401/);
    for (const [name, secret] of Object.entries({ ...secrets, key: KEY })) {
      assert.ok(!log.includes(secret), `the log holds the ${name}`);
      // The signature alone is enough to replay a token: no part of one may appear either.
      assert.ok(!log.includes(secret.split(".").at(-1) as string), `the log holds part of ${name}`);
    }
    assert.ok(!/authorization=/i.test(log), "the log holds a query string");
    const metrics = await fetch(new URL("/metrics", url));
    assert.equal(metrics.status, 404, "metrics are off unless asked for");
    await metrics.arrayBuffer();
  });

  test("writes one line per entry in the pretty format, whatever a client put in a field", () => {
    const forged = "matchX\n2026-12-02T00:00:00.000Z ERROR forged line=1";
    const line = JSON.stringify({
      level: 20,
      time: "2026-12-02T10:00:00.000Z",
      pid: 1,
      msg: "request refused",
      route: "subscribe",
      reason: `unknown parameter ${forged}`,
      status: 400,
    });
    assert.equal(
      pretty(line),
      `2026-12-02T10:00:00.000Z DEBUG request refused route=subscribe reason=${JSON.stringify(`unknown parameter ${forged}`)} status=400\n`,
    );
    assert.equal(pretty(line).split("\n").length, 2, "one line and its end");
  });

  test("escapes DEL, C1 controls and the line and paragraph separators in the pretty format", () => {
    const reason = "x\u0085NEL\u2028LS\u2029PS\u009b31mCSI\u007fDEL";
    const line = JSON.stringify({ level: 30, time: "t", msg: "m", reason, nested: { reason } });
    const out = pretty(line);
    const escaped = String.raw`"x\u0085NEL\u2028LS\u2029PS\u009b31mCSI\u007fDEL"`;
    assert.equal(out, `t INFO  m reason=${escaped} nested={"reason":${escaped}}\n`);
    // What a log reader that splits on every Unicode line break sees: one line.
    assert.equal(out.split(/\r\n|[\n\v\f\r\u0085\u2028\u2029]/).length, 2);
  });

  test("names the setting whose port is taken, before saying it listens", async () => {
    const taken = createServer().listen(0, "127.0.0.1");
    await once(taken, "listening");
    const port = (taken.address() as AddressInfo).port;
    try {
      for (const flag of ["--port", "--metrics-port"]) {
        const args = ["--host", "127.0.0.1", "--jwt-key", KEY, "--port", "0", flag, String(port)];
        run = crier(args);
        assert.equal(await run.exit, 1);
        assert.equal(
          run.stderr.split("\n")[0],
          `crier: ${flag}: cannot listen on 127.0.0.1 port ${port}: it is in use by another process`,
        );
        assert.doesNotMatch(run.stdout, /listening on/);
      }
    } finally {
      taken.close();
    }
  });

  test("names the host setting when the host is the trouble: malformed, or no such name", async () => {
    for (const [host, reason] of [
      ["[::1]", /^crier: --host takes an IPv6 address without brackets: ::1$/],
      [" 127.0.0.1", /^crier: --host must be an IP address or a host name, got " 127.0.0.1"$/],
    ] as const) {
      run = crier(["--jwt-key", KEY, "--port", "0", "--host", host]);
      assert.equal(await run.exit, 2, run.stderr);
      assert.match(run.stderr.split("\n")[0] ?? "", reason);
    }
    // A zone, which a URL cannot hold: left out of the URLs said, not a crash.
    const zoned = await serve(["--host", "::1%lo"], { CRIER_JWT_KEY: undefined });
    run = zoned.run;
    assert.match(zoned.url, /^http:\/\/\[::1\]:\d+\/\.well-known\/mercure$/);
    await waitFor(
      () => (/Subscribe: {2}curl -N 'http:\/\/\[::1\]:/.test(run?.stderr ?? "") ? true : undefined),
      "the banner",
    );
    run.child.kill("SIGTERM");
    await run.exit;
    run = crier(["--jwt-key", KEY, "--port", "0"], { CRIER_HOST: "no-such-host.invalid" });
    assert.equal(await run.exit, 1);
    assert.match(
      run.stderr.split("\n")[0] ?? "",
      /^crier: CRIER_HOST: cannot listen on no-such-host\.invalid port 0: getaddrinfo (ENOTFOUND|EAI_AGAIN)/,
    );
  });

  test("refuses a log level or format it does not know, naming the flag", async () => {
    run = crier(["--jwt-key", KEY, "--log-level", "verbose"]);
    assert.equal(await run.exit, 2);
    assert.match(run.stderr, /--log-level must be one of error, warn, info, debug/);
  });

  test("serves metrics on a port of their own with --metrics-port, and not on the hub's", async () => {
    const started = await serve([
      "--jwt-key",
      KEY,
      "--metrics-port",
      "0",
      "--log-format",
      "pretty",
    ]);
    run = started.run;
    const metricsUrl = await waitFor(
      () => /metrics on (http:\/\/\S+)/.exec(run?.stdout ?? "")?.[1],
      "the metrics listener",
    );
    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^crier_subscribers 0$/m);
    // As on the hub's port: HEAD, a query string, and 405 for other methods.
    assert.equal((await fetch(metricsUrl, { method: "HEAD" })).status, 200);
    const queried = await fetch(`${metricsUrl}?name=crier`);
    assert.equal(queried.status, 200);
    await queried.arrayBuffer();
    const posted = await fetch(metricsUrl, { method: "POST" });
    assert.equal(posted.status, 405);
    assert.equal(posted.headers.get("allow"), "GET, HEAD");
    assert.equal(await posted.text(), "only GET and HEAD are allowed here\n");
    const elsewhere = await fetch(new URL("/other", metricsUrl));
    assert.equal(elsewhere.status, 404);
    await elsewhere.arrayBuffer();
    const hubs = await fetch(new URL("/metrics", started.url));
    assert.equal(hubs.status, 404);
    await hubs.arrayBuffer();
    assert.match(
      run.stdout,
      /^\S+Z INFO {2}starting version=/m,
      "the pretty format is one line each",
    );
  });
});
