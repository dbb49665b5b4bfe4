import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isCrierError } from "../src/errors.ts";
import { MemoryHistory } from "../src/history/memory.ts";
import { validateUpdate } from "../src/update.ts";

const fields = (data: string, id?: string) => validateUpdate({ topics: ["t"], data, id });
const ids = (updates: readonly { id: string }[] | undefined) => updates?.map((u) => u.id);

describe("MemoryHistory", () => {
  test("generates ordered, distinct ids and honours a publisher's id", () => {
    const history = new MemoryHistory();
    const a = history.append(fields("a"));
    const b = history.append(fields("b", "mine"));
    const c = history.append(fields("c"));
    assert.equal(b.id, "mine");
    assert.notEqual(a.id, c.id);
    // Mercure: a hub's own id is an IRI or a fragment.
    assert.match(a.id, /^#[0-9a-z]+-0$/);
    assert.match(c.id, /^#[0-9a-z]+-2$/);
    assert.deepEqual(ids(history.after(a.id)), ["mine", c.id]);
    assert.deepEqual(ids(history.after("mine")), [c.id]);
    assert.deepEqual(history.after(c.id), []);
    assert.equal(history.lastEventId, c.id);
  });

  test("encodes each update once, with its final id", () => {
    const history = new MemoryHistory();
    const update = history.append(fields("x", "id-1"));
    assert.equal(update.bytes.toString(), "id: id-1\ndata: x\n\n");
  });

  test("answers undefined for an unknown id and replays everything for earliest", () => {
    const history = new MemoryHistory();
    history.append(fields("a", "1"));
    history.append(fields("b", "2"));
    assert.equal(history.after("nope"), undefined);
    assert.deepEqual(ids(history.after("earliest")), ["1", "2"]);
  });

  test("evicts the oldest beyond maxEvents, and their ids become unknown", () => {
    const history = new MemoryHistory({ maxEvents: 3 });
    for (let i = 1; i <= 5; i++) history.append(fields(String(i), String(i)));
    assert.equal(history.size, 3);
    assert.equal(history.after("1"), undefined);
    assert.equal(history.after("2"), undefined);
    assert.deepEqual(ids(history.after("3")), ["4", "5"]);
  });

  test("evicts the oldest beyond maxBytes", () => {
    const one = fields("x".repeat(100), "a");
    const size = new MemoryHistory().append(one).bytes.length;
    const history = new MemoryHistory({ maxBytes: size * 2 });
    history.append(fields("x".repeat(100), "a"));
    history.append(fields("x".repeat(100), "b"));
    history.append(fields("x".repeat(100), "c"));
    assert.equal(history.size, 2);
    assert.ok(history.bytes <= size * 2);
    assert.equal(history.after("a"), undefined);
    assert.deepEqual(ids(history.after("b")), ["c"]);
  });

  test("an update larger than maxBytes is not kept, and resuming across it answers unknown", () => {
    const history = new MemoryHistory({ maxBytes: 64 });
    history.append(fields("small", "a"));
    const big = history.append(fields("x".repeat(100), "big"));
    assert.equal(big.id, "big");
    assert.equal(history.after("a"), undefined, "a partial window would hide the big update");
    history.append(fields("after", "b"));
    assert.deepEqual(ids(history.after("b")), []);
  });

  test("refuses a publisher id that is still in the history", () => {
    const history = new MemoryHistory();
    history.append(fields("a", "dup"));
    assert.throws(
      () => history.append(fields("b", "dup")),
      (err) => isCrierError(err, "CRIER_ERR_DUPLICATE_ID"),
    );
    assert.equal(history.size, 1);
  });

  test("keeps nothing with maxEvents 0", () => {
    const history = new MemoryHistory({ maxEvents: 0 });
    const a = history.append(fields("a"));
    assert.equal(history.size, 0);
    assert.equal(history.after(a.id), undefined);
  });

  test("wraps around its ring many times without losing order", () => {
    const history = new MemoryHistory({ maxEvents: 7 });
    for (let i = 0; i < 100; i++) history.append(fields(String(i), `e${i}`));
    assert.deepEqual(ids(history.after("e94")), ["e95", "e96", "e97", "e98", "e99"]);
  });
});
