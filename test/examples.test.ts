/**
 * Every folder of examples/ runs as its comment says and serves publish → subscribe → resume,
 * driven by the same scenario: the real `eventsource` client subscribes, a publisher posts
 * with a token, the event arrives, and a stream opened with Last-Event-ID gets what was missed.
 * The examples import the package by its name, which resolves to this package's build.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { EventSource, type FetchLike } from "eventsource";
import { MERCURE_PATH, mintToken } from "../src/mercure/index.ts";
import { ensureBuilt } from "./build.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const EXAMPLES = fileURLToPath(new URL("../examples/", import.meta.url));
// The examples' default key (Mercure's own well-known default): fine for a demo, never deployed.
const SECRET = "!ChangeThisMercureHubJWTSecretKey!";
const TOPIC = "https://example.com/books/1";

type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

async function publish(fetcher: Fetch, base: string, data: string): Promise<string> {
  const token = await mintToken(SECRET, { publish: [TOPIC] });
  const response = await fetcher(`${base}${MERCURE_PATH}`, {
    method: "POST",
    body: new URLSearchParams({ topic: TOPIC, data }),
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(response.status, 200, await response.clone().text());
  return response.text();
}

// Reads an event stream's body as text until `until` holds for what has arrived.
async function readUntil(
  body: ReadableStream<Uint8Array>,
  until: (text: string) => boolean,
): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (!until(text)) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel();
  }
  return text;
}

/** Subscribe with EventSource, publish, see the event; then resume after it with fetch. */
async function scenario(base: string, fetcher: Fetch = fetch): Promise<void> {
  const url = `${base}${MERCURE_PATH}?topic=${encodeURIComponent(TOPIC)}`;
  const source = new EventSource(url, { fetch: fetcher as FetchLike });
  let first: string;
  try {
    await once(source, "open");
    const received = once(source, "message");
    first = await publish(fetcher, base, "hello");
    const [event] = (await received) as [MessageEvent];
    assert.deepEqual([event.lastEventId, event.data], [first, "hello"]);
  } finally {
    source.close();
  }
  const missed = await publish(fetcher, base, "missed");
  const resumed = await fetcher(url, { headers: { "Last-Event-ID": first } });
  assert.equal(resumed.headers.get("last-event-id"), first);
  const frame = `:\nid: ${missed}\ndata: missed\n\n`;
  const text = await readUntil(
    resumed.body as ReadableStream<Uint8Array>,
    (t) => t.length >= frame.length,
  );
  assert.equal(text, frame);
}

function available(binary: string): boolean {
  return spawnSync(binary, ["--version"], { stdio: "ignore" }).status === 0;
}

// Starts an example as its comment says, on a free port; resolves with its URL once it listens.
async function start(command: readonly string[]): Promise<{ child: ChildProcess; base: string }> {
  const [binary, ...args] = command as [string, ...string[]];
  const child = spawn(binary, args, {
    cwd: ROOT,
    env: { ...process.env, PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> });
  for await (const line of lines) {
    const found = /listening on (http:\/\/\S+)/.exec(line);
    if (found?.[1] !== undefined) return { child, base: found[1] };
  }
  throw new Error(`${command.join(" ")} exited before listening`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
}

const SERVERS: Record<string, readonly string[]> = {
  "node-http": [process.execPath, `${EXAMPLES}node-http/server.mjs`],
  express: [process.execPath, `${EXAMPLES}express/server.mjs`],
  fastify: [process.execPath, `${EXAMPLES}fastify/server.mjs`],
  "hono-node": [process.execPath, `${EXAMPLES}hono-node/server.mjs`],
  bun: ["bun", `${EXAMPLES}bun/server.ts`],
  deno: [
    "deno",
    "run",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-sys",
    `${EXAMPLES}deno/server.ts`,
  ],
};

describe("the examples", () => {
  before(ensureBuilt);

  for (const [name, command] of Object.entries(SERVERS)) {
    test(`${name}: publishes to an EventSource subscriber, and resumes after Last-Event-ID`, async (t) => {
      const binary = command[0] as string;
      if (binary !== process.execPath && !available(binary)) {
        if (process.env.CI === "true") assert.fail(`${binary} is not on PATH, and CI needs it`);
        t.skip(
          `${binary} is not on PATH (install it with npm install ${binary} outside the project)`,
        );
        return;
      }
      const { child, base } = await start(command);
      try {
        await scenario(base);
      } finally {
        await stop(child);
      }
    });
  }

  test("express: an app route publishes in process with hub.publish()", async () => {
    const { child, base } = await start(SERVERS.express as readonly string[]);
    try {
      const url = `${base}${MERCURE_PATH}?topic=${encodeURIComponent(TOPIC)}`;
      const source = new EventSource(url);
      try {
        await once(source, "open");
        const received = once(source, "message");
        const response = await fetch(`${base}/messages`, {
          method: "POST",
          body: new URLSearchParams({ topic: TOPIC, data: "from the app" }),
        });
        const id = await response.text();
        const [event] = (await received) as [MessageEvent];
        assert.deepEqual([event.lastEventId, event.data], [id, "from the app"]);
      } finally {
        source.close();
      }
    } finally {
      await stop(child);
    }
  });

  // The Fetch apps, called in process: a Hono app's `fetch`, and a Next.js route module's
  // GET/POST exports, each given the Requests a server would give them.
  const load = async (path: string) => import(pathToFileURL(`${EXAMPLES}${path}`).href);

  test("hono (Fetch app): app.fetch serves publish, subscribe and resume", async () => {
    const { default: app, hub } = await load("hono/app.ts");
    try {
      await scenario("http://hono.test", (input, init) => app.fetch(new Request(input, init)));
    } finally {
      await hub.close();
    }
  });

  test("nextjs: the route module's GET and POST serve publish, subscribe and resume", async () => {
    const route = await load("nextjs/app/.well-known/mercure/[[...path]]/route.ts");
    const { hub } = await load("nextjs/lib/mercure.ts");
    assert.equal(route.dynamic, "force-dynamic");
    try {
      await scenario("http://next.test", (input, init) => {
        const request = new Request(input, init);
        const handler = route[request.method] as (request: Request) => Promise<Response>;
        return handler(request);
      });
    } finally {
      await hub.close();
    }
  });
});
