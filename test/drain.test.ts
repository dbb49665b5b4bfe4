import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, test } from "node:test";
import { EventSource } from "eventsource";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { crier, KEY, type Run, serve, waitFor } from "./cli-harness.ts";
import { freePort, publish, sleep, until } from "./helpers.ts";

const SUBSCRIBERS = 1000;
const DRAIN_MS = 4000;

interface RawSubscriber {
  readonly socket: Socket;
  received: string;
  closedAt: number | undefined;
}

/** A subscriber over a raw socket: the lightest client there is. */
function subscribe(url: URL): Promise<RawSubscriber> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), "127.0.0.1");
    const sub: RawSubscriber = { socket, received: "", closedAt: undefined };
    socket.setEncoding("utf8");
    socket.on("error", () => {});
    // The hub ending the stream (its FIN) is what is measured, not the socket's full close.
    const ended = () => {
      sub.closedAt ??= Date.now();
    };
    socket.on("end", ended);
    socket.on("close", ended);
    socket.on("data", (chunk: string) => {
      const first = sub.received === "";
      sub.received += chunk;
      if (first) resolve(sub);
    });
    socket.once("connect", () =>
      socket.write(`GET ${url.pathname}?topic=a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`),
    );
    socket.once("close", () => reject(new Error(`closed before answering: ${sub.received}`)));
  });
}

/**
 * Sends `count` pipelined `GET path` requests on one connection; resolves with what came back
 * once `count` answers have, or the hub has closed the connection.
 */
function pipelined(url: URL, path: string, count: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), "127.0.0.1");
    let received = "";
    socket.setEncoding("latin1");
    socket.on("error", reject);
    socket.on("data", (chunk: string) => {
      received += chunk;
      if ((received.match(/^HTTP\/1\.1 \d{3} /gm)?.length ?? 0) < count) return;
      socket.destroy();
      resolve(received);
    });
    socket.on("close", () => resolve(received));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`.repeat(count));
  });
}

const answers = (text: string): number => text.match(/^HTTP\/1\.1 \d{3} /gm)?.length ?? 0;

/** The hub on the command line, anonymous, with a drain window of DRAIN_MS. */
const serveDraining = () =>
  serve(["--jwt-key", KEY, "--anonymous", "--drain-timeout", String(DRAIN_MS)]);

describe("drain on SIGTERM", () => {
  let run: Run | undefined;
  const subscribers: RawSubscriber[] = [];
  afterEach(async () => {
    for (const s of subscribers) s.socket.destroy();
    run?.child.kill("SIGKILL");
    await run?.exit;
  });

  test(`ends ${SUBSCRIBERS} streams spread over the window, each with a retry hint, and exits 0 in time`, async () => {
    const started = await serveDraining();
    run = started.run;
    const url = new URL(started.url);
    for (let i = 0; i < SUBSCRIBERS; i += 50) {
      const batch = Array.from({ length: Math.min(50, SUBSCRIBERS - i) }, () => subscribe(url));
      subscribers.push(...(await Promise.all(batch)));
    }
    assert.equal((await fetch(new URL("/readyz", url))).status, 200);
    assert.equal(answers(await pipelined(url, "/readyz", 2)), 2, "kept alive before the drain");

    const signalled = Date.now();
    run.child.kill("SIGTERM");
    const exit = run.exit;
    await sleep(100);
    const ready = await fetch(new URL("/readyz", url));
    assert.equal(ready.status, 503, "not ready once draining");
    const late = await fetch(`${url}?topic=a`);
    assert.equal(late.status, 503, "a new subscriber is refused while draining");
    assert.match(late.headers.get("retry-after") ?? "", /^\d+$/);
    await late.arrayBuffer();
    // An EventSource would give up for good on a 503: it gets a stream with a retry hint only.
    const sse = await fetch(`${url}?topic=a`, { headers: { Accept: "text/event-stream" } });
    assert.equal(sse.status, 200, "an event-stream client is sent back to retry");
    assert.equal(sse.headers.get("content-type"), "text/event-stream");
    const hint = /^retry: (\d+)\n\n$/.exec(await sse.text());
    assert.ok(hint !== null, "the stream holds a retry hint and nothing else");
    assert.ok(Number(hint[1]) >= 1000 && Number(hint[1]) <= 2000, `retry ${hint[1]}`);
    const token = await mintToken(KEY, { publish: ["*"] });
    const accepted = await publish(url.href, { topic: "a", data: "during the drain" }, token);
    assert.equal(accepted.status, 200, "publishes are still taken while streams end");
    // Each answer is the last on its connection: a load balancer's next check, a publisher's
    // next publish, a client's retry open a new one, which can reach another node.
    const once = await pipelined(url, "/readyz", 2);
    assert.equal(answers(once), 1, `one answer, then the connection closes: ${once}`);
    assert.match(once, /^HTTP\/1\.1 503 .*\r\nConnection: close\r\n/s);
    const closing = await pipelined(url, "/.well-known/mercure?topic=a", 2);
    assert.equal(answers(closing), 1, `one answer, then the connection closes: ${closing}`);

    assert.equal(await exit, 0);
    const exitedAfter = Date.now() - signalled;
    // Generous: the window plus the process's own start-up of its exit.
    assert.ok(exitedAfter < DRAIN_MS + 3000, `exited ${exitedAfter} ms after SIGTERM`);
    await until(() => subscribers.every((s) => s.closedAt !== undefined), "every stream to end");

    const slices = new Array<number>(10).fill(0);
    for (const s of subscribers) {
      const at = (s.closedAt as number) - signalled;
      const slice = Math.min(9, Math.max(0, Math.floor((at / DRAIN_MS) * 10)));
      slices[slice] = (slices[slice] as number) + 1;
    }
    for (const [i, n] of slices.entries()) {
      assert.ok(n <= SUBSCRIBERS / 4, `slice ${i} of the window closed ${n} streams: ${slices}`);
    }
    const retries = new Set<string>();
    for (const s of subscribers) {
      const retry = /\nretry: ?(\d+)\n/.exec(s.received)?.[1];
      assert.ok(retry !== undefined, "each stream ends with a retry hint");
      retries.add(retry);
    }
    assert.ok(retries.size > 10, `the retry hints are jittered (${retries.size} distinct)`);
  });

  test("an EventSource whose stream ends early in the drain comes back, and resumes on the restarted hub without loss", async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "crier-drain-es-"));
    const start = async () => {
      const hub = crier(
        ["--port", String(port), "--host", "127.0.0.1", "--jwt-key", KEY, "--anonymous"].concat([
          "--history-file",
          join(dir, "history"),
          "--drain-timeout",
          "6000",
        ]),
      );
      await waitFor(() => /listening on/.exec(hub.stdout) ?? undefined, `the hub: ${hub.stderr}`);
      return hub;
    };
    const url = new URL(`http://127.0.0.1:${port}/.well-known/mercure`);
    const token = await mintToken(KEY, { publish: ["*"] });
    const published: string[] = [];
    const post = async (data: string) => {
      const result = await publish(url.href, { topic: "a", data }, token);
      assert.equal(result.status, 200, result.body);
      published.push(result.body);
    };
    run = await start();
    // Connected first, so the drain ends its stream in its first step, at once.
    const es = new EventSource(`${url}?topic=a`);
    const received: string[] = [];
    es.onmessage = (e) => received.push(e.lastEventId);
    try {
      await new Promise((resolve) => {
        es.onopen = resolve;
      });
      // Enough streams that the drain goes on for seconds after the EventSource's has ended.
      subscribers.push(...(await Promise.all(Array.from({ length: 50 }, () => subscribe(url)))));
      await post("before");
      run.child.kill("SIGTERM");
      await post("during the drain");
      // Its retry hint (1-2 s) brings it back while the drain goes on (about 4 s).
      await sleep(2500);
      await post("later in the drain");
      assert.equal(await run.exit, 0);
      assert.notEqual(es.readyState, EventSource.CLOSED, "the EventSource still tries");
      run = await start();
      await post("after the restart");
      await until(() => received.length >= published.length, "every update", 20_000);
      assert.deepEqual(received, published, "each update once, in order");
    } finally {
      es.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a second signal during the drain changes nothing: the port stays open until the end", async () => {
    const started = await serveDraining();
    run = started.run;
    const url = new URL(started.url);
    subscribers.push(...(await Promise.all(Array.from({ length: 20 }, () => subscribe(url)))));
    // As Ctrl-C on `--workers` does: SIGINT to the process, then SIGTERM from the primary.
    run.child.kill("SIGINT");
    await sleep(50);
    run.child.kill("SIGTERM");
    const exit = run.exit;
    await sleep(200);
    assert.equal((await fetch(new URL("/readyz", url))).status, 503, "still answering, draining");
    const token = await mintToken(KEY, { publish: ["*"] });
    const accepted = await publish(url.href, { topic: "a", data: "during the drain" }, token);
    assert.equal(accepted.status, 200);
    assert.equal(await exit, 0);
    const drains = run.stdout.split("\n").filter((line) => line.includes('"drain started"'));
    assert.equal(drains.length, 1, "one drain");
  });
});
