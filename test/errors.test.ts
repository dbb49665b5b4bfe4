import assert from "node:assert/strict";
import { once } from "node:events";
import { afterEach, describe, test } from "node:test";
import { createHub, type Hub, isCrierError, type Sink, subscribeNode } from "../src/index.ts";

// Plain JavaScript can pass anything: every public entry answers with a typed error.
const anything = (value: unknown) => value as never;
const code = (expected: string) => (err: unknown) => isCrierError(err) && err.code === expected;

const sink: Sink = { start() {}, write: () => true, end() {}, destroy() {} };

describe("public entries refuse what cannot work with a CrierError", () => {
  let hub: Hub;
  afterEach(() => hub.close());

  test("hub.publish refuses a missing input, missing topics and fields that are not strings", async () => {
    hub = createHub({ keepAliveMs: 0 });
    await assert.rejects(hub.publish(anything(null)), code("CRIER_ERR_BAD_REQUEST"));
    await assert.rejects(hub.publish(anything({ data: { a: 1 } })), code("CRIER_ERR_BAD_REQUEST"));
    await assert.rejects(
      hub.publish(anything({ topics: "t", data: { a: 1 } })),
      code("CRIER_ERR_INVALID_EVENT"),
    );
    await assert.rejects(
      hub.publish(anything({ topics: "t", id: 7 })),
      code("CRIER_ERR_INVALID_EVENT"),
    );
    // The hub's own ids are fragments; `earliest` asks a resume for everything.
    await assert.rejects(hub.publish({ topics: "t", id: "#1-1" }), code("CRIER_ERR_INVALID_EVENT"));
    await assert.rejects(
      hub.publish({ topics: "t", id: "earliest" }),
      code("CRIER_ERR_INVALID_EVENT"),
    );
    await assert.rejects(
      hub.publish(anything({ topics: "t", private: "yes" })),
      code("CRIER_ERR_INVALID_EVENT"),
    );
    // Lone surrogates: both would be written as `x\uFFFD`, the same id twice, neither resumable.
    for (const bad of [{ id: "x\ud800" }, { id: "x\udc00" }, { type: "t\ud83d" }]) {
      await assert.rejects(
        hub.publish({ topics: "t", ...bad }),
        (err) =>
          isCrierError(err, "CRIER_ERR_INVALID_EVENT") && /well-formed Unicode/.test(err.message),
      );
    }
    assert.equal((await hub.publish({ topics: "t", id: "x\ud83d\ude00" })).id, "x😀");
    assert.equal(hub.stats.published, 1, "only the well-formed one was taken");
  });

  test("createHub, hub.connect and subscribeNode refuse arguments of the wrong shape", () => {
    hub = createHub({ keepAliveMs: 0 });
    assert.throws(() => createHub(anything(null)), code("CRIER_ERR_INVALID_OPTION"));
    assert.throws(
      () => hub.connect(anything({}), { topics: ["t"] }),
      code("CRIER_ERR_INVALID_OPTION"),
    );
    assert.throws(() => hub.connect(sink, anything({})), code("CRIER_ERR_INVALID_OPTION"));
    assert.throws(
      () => hub.connect(sink, anything({ topics: ["t"], authorized: "*" })),
      code("CRIER_ERR_INVALID_OPTION"),
    );
    assert.throws(
      () => subscribeNode(hub, anything({}), anything({}), { topics: ["t"] }),
      code("CRIER_ERR_INVALID_OPTION"),
    );
    assert.equal(hub.stats.subscribers, 0, "nothing was registered");
  });

  test("a runtime failure with no error listener becomes a process warning", async () => {
    const backplane = {
      start: () => Promise.reject(new Error("the engine is down")),
      publish: () => Promise.reject(new Error("down")),
      replay: () => undefined,
      lastEventId: () => undefined,
      close: async () => {},
    };
    const warned = once(process, "warning");
    hub = createHub({ keepAliveMs: 0, backplane: anything(backplane) });
    const [warning] = (await warned) as [Error];
    assert.equal(warning.message, "the engine is down");
    await assert.rejects(hub.ready());
  });
});
