import assert from "node:assert/strict";
import { once } from "node:events";
import { type IncomingMessage, request } from "node:http";
import { after, before, describe, test } from "node:test";
import { createParser } from "eventsource-parser";
import { publish, startHub, type TestHub } from "./helpers.ts";

const SUBSCRIBERS = 1000;
const UPDATES = 1000;

/** A subscriber that checks, event by event, that data counts 0, 1, 2… with no gap. */
async function countingSubscriber(url: string) {
  const req = request(url, { agent: false });
  req.end();
  const [res] = (await once(req, "response")) as [IncomingMessage];
  const state = { next: 0, errors: [] as string[], done: undefined as unknown as Promise<void> };
  state.done = new Promise<void>((resolve, reject) => {
    const parser = createParser({
      onEvent: (event) => {
        if (event.data !== String(state.next))
          state.errors.push(`expected ${state.next}, got ${event.data}`);
        state.next++;
        if (state.next === UPDATES) resolve();
      },
    });
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => parser.feed(chunk));
    res.on("close", () => reject(new Error(`closed after ${state.next} events`)));
  });
  return { state, close: () => req.destroy() };
}

describe("fan-out", () => {
  let t: TestHub;
  before(async () => {
    t = await startHub();
  });
  after(() => t.close());

  test(`${SUBSCRIBERS} subscribers each receive ${UPDATES} updates in order, none lost`, async () => {
    const subscribers = [];
    for (let i = 0; i < SUBSCRIBERS; i += 100) {
      const batch = [];
      for (let j = i; j < i + 100; j++) batch.push(countingSubscriber(`${t.url}?topic=fan`));
      subscribers.push(...(await Promise.all(batch)));
    }
    assert.equal(t.hub.stats.subscribers, SUBSCRIBERS);
    try {
      // The first updates go through the HTTP publish API; the rest are published in process,
      // in bursts, so that many updates share an event-loop turn as they do under load.
      for (let seq = 0; seq < 10; seq++) {
        const res = await publish(t.url, { topic: "fan", data: String(seq) }, t.publisherToken);
        assert.equal(res.status, 200);
      }
      for (let seq = 10; seq < UPDATES; seq++) {
        await t.hub.publish({ topics: "fan", data: String(seq) });
        if (seq % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(subscribers.map((s) => s.state.done));
      for (const s of subscribers) {
        assert.deepEqual(s.state.errors, []);
        assert.equal(s.state.next, UPDATES);
      }
      assert.equal(t.hub.stats.evicted, 0);
    } finally {
      for (const s of subscribers) s.close();
    }
  });
});
