/**
 * The nginx recipe of docs/deploy.md, run as written (ports changed) by Debian's nginx with its
 * default `proxy_buffering on`, in front of a real hub: updates must go through at once (the
 * hub's `X-Accel-Buffering: no`), and a resume must get exactly the missed updates.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { MERCURE_PATH } from "../src/mercure/index.ts";
import { freePort, openStream, publish, startHub, until } from "./helpers.ts";

const DEPLOY = new URL("../docs/deploy.md", import.meta.url);

function nginxBinary(): string | undefined {
  for (const path of ["/usr/sbin/nginx", "/usr/bin/nginx"]) {
    try {
      execFileSync(path, ["-v"], { stdio: "ignore" });
      return path;
    } catch {}
  }
  return undefined;
}

const nginx = nginxBinary();
const skip =
  nginx === undefined && process.env.CI !== "true"
    ? "nginx is not installed (apt-get install nginx-light); CI=true makes this a failure"
    : false;

/** The `nginx` block of docs/deploy.md, pointed at `hubPort` and listening on `port`. */
function recipe(hubPort: number, port: number): string {
  const block = /```nginx\n([\s\S]*?)```/.exec(readFileSync(DEPLOY, "utf8"))?.[1];
  assert.ok(block !== undefined, "docs/deploy.md has an nginx block");
  assert.match(block, /listen 80;/);
  assert.match(block, /server 127\.0\.0\.1:8080;/);
  return block
    .replace("listen 80;", `listen 127.0.0.1:${port};`)
    .replace("server 127.0.0.1:8080;", `server 127.0.0.1:${hubPort};`);
}

// Everything nginx writes goes to `dir`; no system directory is needed, and no daemon is left.
function nginxConf(dir: string, site: string): string {
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((name) => `    ${name}_temp_path ${join(dir, name)};`)
    .join("\n");
  return `daemon off;
master_process off;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 64; }
http {
    access_log off;
${temp}
${site}
}
`;
}

// A proxy that holds the head back would otherwise hang the test instead of failing it.
async function bounded<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function listening(port: number, ms: number): Promise<void> {
  await until(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = connect(port, "127.0.0.1");
        socket.once("connect", () => {
          socket.destroy();
          resolve(true);
        });
        socket.once("error", () => resolve(false));
      }),
    `nginx to listen on ${port}`,
    ms,
  );
}

test("delivers at once and resumes through Debian's nginx with the documented config", {
  skip,
}, async () => {
  const t = await startHub();
  const dir = mkdtempSync(join(tmpdir(), "crier-nginx-"));
  let child: ChildProcess | undefined;
  const streams: { close(): void }[] = [];
  try {
    const port = await freePort();
    writeFileSync(join(dir, "nginx.conf"), nginxConf(dir, recipe(t.port, port)));
    execFileSync(
      nginx as string,
      ["-t", "-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")],
      {
        stdio: "pipe",
      },
    );
    child = spawn(
      nginx as string,
      ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    await listening(port, 10_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${stderr}`);
    });
    const url = `http://127.0.0.1:${port}${MERCURE_PATH}`;

    // Published right after subscribing: it must arrive well within one keep-alive interval
    // (15 s), i.e. without waiting for nginx's buffers to fill.
    const first = await bounded(openStream(`${url}?topic=a`), "the stream's head through nginx");
    streams.push(first);
    assert.equal(first.status, 200);
    assert.equal(first.headers["content-type"], "text/event-stream");
    await first.waitForComment(5000);
    assert.equal((await publish(url, { topic: "a", data: "one" }, t.publisherToken)).status, 200);
    const [one] = await first.waitForEvents(1, 5000);
    assert.equal(one?.data, "one");
    first.close();

    // Missed while away, then a resume through the proxy: exactly those, in order.
    for (const data of ["two", "three"]) {
      assert.equal((await publish(url, { topic: "a", data }, t.publisherToken)).status, 200);
    }
    const resumed = await bounded(
      openStream(`${url}?topic=a`, { "Last-Event-ID": one?.id as string }),
      "the resumed stream's head through nginx",
    );
    streams.push(resumed);
    assert.equal(resumed.status, 200);
    const events = await resumed.waitForEvents(2, 5000);
    assert.deepEqual(
      events.map((e) => e.data),
      ["two", "three"],
    );
    assert.equal((await publish(url, { topic: "a", data: "four" }, t.publisherToken)).status, 200);
    assert.equal((await resumed.waitForEvents(3, 5000))[2]?.data, "four");
    resumed.close();
  } finally {
    for (const s of streams) s.close();
    if (child !== undefined && child.exitCode === null) {
      // SIGTERM: nginx's fast shutdown, which does not wait for open streams.
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    }
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
