import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { concatFrames, type Frame } from "../src/frame.ts";
import { type CloseReason, type Sink, Subscriber, type SubscriberHost } from "../src/subscriber.ts";
import { sleep } from "./helpers.ts";

class Recorder implements Sink, SubscriberHost {
  ended = false;
  destroyed = false;
  closes: CloseReason[] = [];
  start() {}
  written = { events: 0, bytes: 0 };

  write() {
    return true;
  }
  end() {
    this.ended = true;
  }
  destroy() {
    this.destroyed = true;
  }
  schedule() {}
  dropped() {}
  join(frames: readonly Frame[], bytes: number) {
    return concatFrames(frames, bytes);
  }
  closed(_: Subscriber, reason: CloseReason) {
    this.closes.push(reason);
  }
  failed(err: unknown): never {
    throw err;
  }
}

describe("subscription expiry", () => {
  test("ends an open stream gracefully at expiresAt, so the client reconnects", async () => {
    const r = new Recorder();
    const s = new Subscriber(r, r, { topics: ["t"], expiresAt: Date.now() + 30 });
    s.open({}, []);
    await sleep(80);
    assert.deepEqual(r.closes, ["expired"]);
    assert.equal(r.ended, true);
    assert.equal(r.destroyed, false);
  });

  test("does not fire early for an expiry beyond the 24.8-day timer limit", async () => {
    const r = new Recorder();
    const s = new Subscriber(r, r, {
      topics: ["t"],
      expiresAt: Date.now() + 60 * 24 * 3600 * 1000,
    });
    s.open({}, []);
    await sleep(30);
    assert.deepEqual(r.closes, []);
    s.close();
    assert.deepEqual(r.closes, ["closed"]);
  });

  test("stops its timer when the subscription closes first", async () => {
    const r = new Recorder();
    const s = new Subscriber(r, r, { topics: ["t"], expiresAt: Date.now() + 20 });
    s.open({}, []);
    s.gone();
    await sleep(50);
    assert.deepEqual(r.closes, ["client"]);
  });
});
