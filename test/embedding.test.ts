import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import express from "express";
import { createHub, subscribeNode } from "../src/index.ts";
import { createHandler, MERCURE_PATH, mintToken } from "../src/mercure/index.ts";
import { openStream, SECRET, until } from "./helpers.ts";

async function listen(server: Server): Promise<string> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("embedding the hub in an app", () => {
  test("works from a plain node:http handler, with hub.publish in process", async () => {
    const hub = createHub();
    const server = createServer((req, res) => {
      subscribeNode(hub, req, res, { topics: ["chat"] });
    });
    const base = await listen(server);
    const s = await openStream(`${base}/events`);
    try {
      const update = await hub.publish({ topics: "chat", data: "hi", type: "message" });
      const [event] = await s.waitForEvents(1);
      assert.deepEqual([event?.id, event?.event, event?.data], [update.id, "message", "hi"]);
      // The browser resumes with the Last-Event-ID header; the hub reads it from the request.
      const missed = await hub.publish({ topics: "chat", data: "missed" });
      const again = await openStream(`${base}/events`, { "Last-Event-ID": update.id });
      assert.equal((await again.waitForEvents(1))[0]?.id, missed.id);
      again.close();
    } finally {
      s.close();
      await hub.close();
      server.close();
    }
  });

  test("subscribeNode after an await does not register a client gone meanwhile", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    let [received, handled, closed] = [0, 0, 0];
    let open = (): void => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const server = createServer(async (req, res) => {
      received++;
      // The app checks something first (a session, a token) while the client goes away.
      await gate;
      subscribeNode(hub, req, res, { topics: ["chat"], detach: req.url === "/events?detach" });
      handled++;
    });
    server.on("connection", (socket) => socket.on("close", () => closed++));
    const base = await listen(server);
    try {
      const requests = ["/events", "/events?detach"].map((path) => {
        const req = request(`${base}${path}`, { agent: false });
        req.on("error", () => {});
        req.end();
        return req;
      });
      await until(() => received === 2, "both requests");
      for (const req of requests) req.destroy();
      await until(() => closed === 2, "both connections closed");
      open();
      await until(() => handled === 2, "both handlers' subscribeNode");
      assert.equal(hub.stats.subscribers, 0);
      assert.deepEqual(hub.stats.disconnects, { client: 2 });
    } finally {
      await hub.close();
      server.close();
    }
  });

  test("a stream ended by hub.close() carries the update published just before it", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    const server = createServer((req, res) => {
      subscribeNode(hub, req, res, { topics: ["chat"] });
    });
    const base = await listen(server);
    try {
      const s = await openStream(`${base}/events`);
      const first = await hub.publish({ topics: "chat", data: "first" });
      await s.waitForEvents(1);
      const last = await hub.publish({ topics: "chat", data: "goodbye" });
      await hub.close();
      const events = await s.waitForEvents(2);
      assert.deepEqual(
        events.map((e) => [e.id, e.data]),
        [
          [first.id, "first"],
          [last.id, "goodbye"],
        ],
      );
      s.close();
    } finally {
      await hub.close();
      server.close();
    }
  });

  test("works from an Express route", async () => {
    const hub = createHub();
    const app = express();
    app.get("/rooms/:room", (req, res) => {
      subscribeNode(hub, req, res, { topics: [`room/${req.params.room}`] });
    });
    app.post("/rooms/:room", express.text(), async (req, res) => {
      const update = await hub.publish({
        topics: `room/${req.params.room}`,
        data: String(req.body),
      });
      res.type("text/plain").send(update.id);
    });
    const server = createServer(app);
    const base = await listen(server);
    const s = await openStream(`${base}/rooms/1`);
    const other = await openStream(`${base}/rooms/2`);
    try {
      assert.equal(s.headers["content-type"], "text/event-stream");
      // In an app the response stays node:http's (its `close` events still fire) unless asked.
      assert.equal(s.headers["transfer-encoding"], "chunked");
      const res = await fetch(`${base}/rooms/1`, {
        method: "POST",
        body: "from express",
        headers: { "Content-Type": "text/plain" },
      });
      const id = await res.text();
      const [event] = await s.waitForEvents(1);
      assert.deepEqual([event?.id, event?.data], [id, "from express"]);
      assert.equal(other.events.length, 0);
    } finally {
      s.close();
      other.close();
      await hub.close();
      server.close();
    }
  });

  test("serves the Mercure endpoint from createHandler mounted by Express at its path, and says where it belongs when mounted elsewhere", async () => {
    const hub = createHub();
    const app = express();
    // Express strips the mount path from req.url: the handler routes by the path as sent.
    const handler = createHandler({ hub, publisherKey: SECRET, anonymous: true });
    app.use(MERCURE_PATH, handler);
    app.use("/hub", handler);
    app.get("/", (_req, res) => {
      res.send("the app's own page");
    });
    const server = createServer(app);
    const base = await listen(server);
    const s = await openStream(`${base}${MERCURE_PATH}?topic=chat`);
    try {
      assert.equal(s.headers["content-type"], "text/event-stream");
      const token = await mintToken(SECRET, { publish: ["*"] });
      const res = await fetch(`${base}${MERCURE_PATH}`, {
        method: "POST",
        body: new URLSearchParams({ topic: "chat", data: "mounted" }),
        headers: { Authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 200);
      const id = await res.text();
      const [event] = await s.waitForEvents(1);
      assert.deepEqual([event?.id, event?.data], [id, "mounted"]);
      assert.equal(await (await fetch(`${base}/`)).text(), "the app's own page");
      const elsewhere = await fetch(`${base}/hub${MERCURE_PATH}?topic=chat`);
      assert.equal(elsewhere.status, 404);
      assert.equal(
        await elsewhere.text(),
        `the Mercure handler is mounted at /hub: mount it at ${MERCURE_PATH} or at the root\n`,
      );
    } finally {
      s.close();
      await hub.close();
      server.close();
    }
  });
});
