import assert from "node:assert/strict";
import { once } from "node:events";
import { afterEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { EVENT_STREAM_DEFAULTS, eventStream } from "../src/adapters/fetch.ts";
import { createHub, type Hub, isCrierError } from "../src/index.ts";
import { available, readUntil, runtimes, startServer } from "./runtimes.ts";

const FIXTURE = fileURLToPath(new URL("fixtures/fetch-server.mjs", import.meta.url));

function request(headers: Record<string, string> = {}, signal?: AbortSignal): Request {
  return new Request("http://hub.test/events", { headers, ...(signal ? { signal } : {}) });
}

describe("eventStream (in process)", () => {
  let hub: Hub;
  afterEach(() => hub.close());

  test("answers an event stream whose body carries each update's exact bytes", async () => {
    hub = createHub({ keepAliveMs: 0 });
    const response = await eventStream(hub, request(), { topics: ["chat"] });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    assert.equal(await readUntil(reader, (t) => t === ":\n"), ":\n");
    const { id } = await hub.publish({ topics: "chat", data: "a\nb", type: "note" });
    const frame = `id: ${id}\nevent: note\ndata: a\ndata: b\n\n`;
    assert.equal(await readUntil(reader, (t) => t.length >= frame.length), frame);
    assert.equal(hub.stats.sinks["fetch-stream"], 1);
  });

  test("resumes after the request's Last-Event-ID, and says earliest for an id it lacks", async () => {
    hub = createHub({ keepAliveMs: 0 });
    const first = await hub.publish({ topics: "chat", data: "1" });
    const second = await hub.publish({ topics: "chat", data: "2" });
    const resumed = await eventStream(hub, request({ "Last-Event-ID": first.id }), {
      topics: ["chat"],
    });
    assert.equal(resumed.headers.get("last-event-id"), first.id);
    const expected = `:\nid: ${second.id}\ndata: 2\n\n`;
    const reader = (resumed.body as ReadableStream<Uint8Array>).getReader();
    assert.equal(await readUntil(reader, (t) => t.length >= expected.length), expected);
    const lost = await eventStream(hub, request({ "Last-Event-ID": "gone" }), {
      topics: ["chat"],
    });
    assert.equal(lost.headers.get("last-event-id"), "earliest");
  });

  test("ends the subscription when the request's signal aborts", async () => {
    hub = createHub({ keepAliveMs: 0 });
    const aborted = new AbortController();
    await eventStream(hub, request({}, aborted.signal), { topics: ["chat"] });
    assert.equal(hub.stats.subscribers, 1);
    const gone = once(hub, "disconnect");
    aborted.abort();
    const [, reason] = await gone;
    assert.equal(reason, "client");
    assert.equal(hub.stats.subscribers, 0);
    // A request that was aborted before it got here ends at once: its stream holds only the
    // opening comment the in-memory hub wrote while registering it.
    const late = await eventStream(hub, request({}, aborted.signal), { topics: ["chat"] });
    assert.equal(await late.text(), ":\n");
    assert.equal(hub.stats.subscribers, 0);
  });

  test("ends the subscription when the reader cancels the body", async () => {
    hub = createHub({ keepAliveMs: 0 });
    const response = await eventStream(hub, request(), { topics: ["chat"] });
    const gone = once(hub, "disconnect");
    await (response.body as ReadableStream<Uint8Array>).cancel();
    assert.equal((await gone)[1], "client");
  });

  test("evicts a subscriber whose reader stops pulling, at its queue bound", async () => {
    hub = createHub({ keepAliveMs: 0, queue: { maxEvents: 8 } });
    const response = await eventStream(hub, request(), { topics: ["chat"], highWaterMark: 1024 });
    const evicted = once(hub, "disconnect");
    const data = "x".repeat(512);
    for (let i = 0; i < 40 && hub.stats.subscribers > 0; i++) {
      await hub.publish({ topics: "chat", data });
      await sleep(1); // let each turn's flush reach the stream
    }
    assert.equal((await evicted)[1], "overflow");
    // The dropped stream fails, so a client reconnects rather than taking it for a clean end.
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    });
  });

  test("ends the stream with a retry hint when the hub closes", async () => {
    hub = createHub({ keepAliveMs: 0, closeRetryMs: 1234 });
    const response = await eventStream(hub, request(), { topics: ["chat"] });
    await hub.close();
    const text = await new Response(response.body).text();
    assert.equal(text, ":\nretry: 1234\n\n");
  });

  test("refuses what is not a Request, and a bad option, with a CrierError", async () => {
    hub = createHub({ keepAliveMs: 0 });
    await assert.rejects(eventStream(hub, {} as Request, { topics: ["chat"] }), (err) =>
      isCrierError(err, "CRIER_ERR_INVALID_OPTION"),
    );
    await assert.rejects(
      eventStream(hub, request(), { topics: ["chat"], highWaterMark: 0 }),
      (err) => isCrierError(err, "CRIER_ERR_INVALID_OPTION"),
    );
    for (const options of [undefined, {}, { topics: "chat" }]) {
      await assert.rejects(eventStream(hub, request(), options as never), (err) =>
        isCrierError(err, "CRIER_ERR_INVALID_OPTION"),
      );
    }
    assert.equal(hub.stats.subscribers, 0, "nothing was registered");
    assert.equal(EVENT_STREAM_DEFAULTS.highWaterMark, 65_536);
  });
});

// The same scenario against a real server on each runtime: subscribe, publish, disconnect,
// publish more, resume.
const RUNTIMES = runtimes(FIXTURE);

async function publish(url: string, data: string): Promise<string> {
  const body = new URLSearchParams({ topic: "chat", data });
  const response = await fetch(`${url}/publish`, { method: "POST", body });
  assert.equal(response.status, 200);
  return response.text();
}

async function subscribers(url: string): Promise<number> {
  return ((await (await fetch(`${url}/stats`)).json()) as { subscribers: number }).subscribers;
}

describe("eventStream on a real server", () => {
  for (const [runtime, command] of Object.entries(RUNTIMES)) {
    test(`${runtime}: subscribes, publishes, notices the client leave and resumes`, async (t) => {
      if (runtime !== "node" && !available(command[0])) {
        if (process.env.CI === "true") assert.fail(`${runtime} is not on PATH, and CI needs it`);
        t.skip(
          `${runtime} is not on PATH (install it with npm install ${runtime} in a folder outside the project)`,
        );
        return;
      }
      const { child, url } = await startServer(command);
      try {
        const leave = new AbortController();
        const live = await fetch(`${url}/events?topic=chat`, { signal: leave.signal });
        assert.equal(live.status, 200);
        assert.equal(live.headers.get("content-type"), "text/event-stream");
        const reader = (live.body as ReadableStream<Uint8Array>).getReader();
        assert.equal(await readUntil(reader, (text) => text === ":\n"), ":\n");
        const one = await publish(url, "one");
        const frame = `id: ${one}\ndata: one\n\n`;
        assert.equal(await readUntil(reader, (text) => text.length >= frame.length), frame);

        leave.abort();
        while ((await subscribers(url)) > 0) await sleep(20);
        const two = await publish(url, "two");
        const three = await publish(url, "three");

        const resumed = await fetch(`${url}/events?topic=chat`, {
          headers: { "Last-Event-ID": one },
        });
        assert.equal(resumed.headers.get("last-event-id"), one);
        const expected = `:\nid: ${two}\ndata: two\n\nid: ${three}\ndata: three\n\n`;
        const again = (resumed.body as ReadableStream<Uint8Array>).getReader();
        assert.equal(await readUntil(again, (text) => text.length >= expected.length), expected);
        await again.cancel();
      } finally {
        child.kill();
        await once(child, "exit");
      }
    });
  }
});
