import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { type Run, serve } from "./cli-harness.ts";
import { JWT_KEY, publish, SseClient, waitFor } from "./redis-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "crier-history-workers-"));
const clients: SseClient[] = [];
let run: Run | undefined;

after(async () => {
  for (const client of clients) client.close();
  if (run !== undefined && run.child.exitCode === null) {
    run.child.kill("SIGTERM");
    await run.exit;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("crier --workers with --history-file and no Redis", { timeout: 90_000 }, () => {
  test("workers share one history and one order: every subscriber gets every update, and resumes on any worker", async () => {
    const started = await serve(
      ["--workers", "3", "--history-file", join(dir, "history"), "--anonymous"],
      { CRIER_JWT_KEY: JWT_KEY, CRIER_REDIS: "" },
    );
    run = started.run;
    const output = () => started.run.stdout + started.run.stderr;
    // Every worker listening, so the connections below spread over all of them.
    await waitFor(() => output().match(/listening on/g)?.length === 3, 30_000, "workers");
    const pids = new Set(
      [...output().matchAll(/"pid":(\d+)[^\n]*listening on/g)].map((match) => match[1]),
    );
    assert.equal(pids.size, 3, "three workers serve");
    for (let i = 0; i < 9; i++) {
      const client = new SseClient("jobs");
      await client.connect(started.url);
      clients.push(client);
    }
    // Publishes land on whichever worker accepts each connection.
    const order: string[] = [];
    for (let i = 0; i < 30; i++) {
      const result = await publish(started.url, { topic: "jobs", data: `${i}` });
      assert.equal(result.status, 200, result.body);
      order.push(result.body);
    }
    await waitFor(() => clients.every((c) => c.ids.length >= 30), 10_000, "every update");
    for (const client of clients) assert.deepEqual(client.ids, order);

    // Clients that went away after the tenth update resume on whichever worker they reach.
    const resumed: SseClient[] = [];
    for (let i = 0; i < 6; i++) {
      const client = new SseClient("jobs");
      clients.push(client);
      resumed.push(client);
      await client.connect(started.url, order[9]);
    }
    const late = await publish(started.url, { topic: "jobs", data: "late" });
    assert.equal(late.status, 200, late.body);
    await waitFor(() => resumed.every((c) => c.ids.length >= 21), 10_000, "the resumes");
    for (const client of resumed) assert.deepEqual(client.ids, [...order.slice(10), late.body]);

    started.run.child.kill("SIGTERM");
    assert.equal(await started.run.exit, 0);
  });

  test("in dev mode every worker is as one process would be: anonymous, the dashboard, the announced token and port", async () => {
    // No key; `--anonymous=off` changes nothing in dev mode, as in one process.
    const started = await serve(
      ["--workers", "2", "--history-file", join(dir, "dev-history"), "--anonymous=off"],
      { CRIER_JWT_KEY: undefined, CRIER_REDIS: "" },
    );
    run = started.run;
    await waitFor(() => /Dashboard: /.test(started.run.stderr), 20_000, "the dev-mode banner");
    const banner = started.run.stderr;
    assert.equal(banner.match(/DEV MODE/g)?.length, 1, "announced once");
    const url = /Subscribe: {2}curl -N '([^?']+)\?/.exec(banner)?.[1] as string;
    assert.equal(new URL(url).port, new URL(started.url).port, "the port the workers listen on");
    const token = /Bearer ([\w.-]+)'/.exec(banner)?.[1] as string;
    for (let i = 0; i < 4; i++) {
      // Connections spread over both workers: each takes the key and the anonymous subscriber.
      assert.equal((await fetch(new URL("/dashboard.json", url))).status, 200);
      const subscriber = new SseClient("dev");
      clients.push(subscriber);
      await subscriber.connect(url);
      const res = await fetch(url, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
        body: new URLSearchParams({ topic: "dev", data: `${i}` }),
      });
      assert.equal(res.status, 200, await res.text());
    }
    started.run.child.kill("SIGTERM");
    assert.equal(await started.run.exit, 0);
  });
});
