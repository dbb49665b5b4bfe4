/**
 * The backplane contract: the promises every engine keeps, written once. `contract(engine)`
 * registers one test per case; an engine that cannot keep a case names the reason in
 * `unsupported`, and the test for that case checks instead that docs/engines.md says so (a
 * visible, documented gap, never a silent skip).
 *
 * An engine is a factory of nodes: each `open()` is one hub node's backplane, and nodes opened
 * on one namespace share one history. Cases take nodes, publish, and compare what each node
 * delivered with what was acknowledged.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { Backplane, Replay } from "../src/backplane/backplane.ts";
import { isCrierError } from "../src/errors.ts";
import type { Update } from "../src/update.ts";
import { until } from "./helpers.ts";

/** A replay read whole: its first page and every page `more` gives after it. */
async function replayed(backplane: Backplane, lastEventId: string): Promise<Replay> {
  const replay = await backplane.replay(lastEventId);
  if (replay === undefined) return undefined;
  const updates = [...replay.updates];
  for (let page = await replay.more?.(); page !== undefined && page.length > 0; ) {
    updates.push(...page);
    page = await replay.more?.();
  }
  return { updates, skip: replay.skip };
}

/** Every case of the contract, with the sentence it is tested (and documented) as. */
export const CASES = {
  order: "every node delivers every update in one global order",
  concurrent:
    "three nodes publishing at once each deliver the order the history stores, the same on every node",
  ids: "publisher and generated ids are kept and resumable on any node",
  duplicate: "a publisher id still held is refused with CRIER_ERR_DUPLICATE_ID on every node",
  unknown: "an unknown, trimmed or other-epoch id answers earliest (replay undefined)",
  newest: "a node started on a stored history knows its newest id before it delivers one",
  length: "the history is bounded in length",
  age: "the history is bounded in age",
  unavailable:
    "an unreachable engine fails publishes fast with CRIER_ERR_UNAVAILABLE, nothing half-delivered",
  outage: "after an outage, delivery resumes from the last delivered update, never from now",
} as const;

export type Case = keyof typeof CASES;

/** Bounds of one node's history. */
export interface Bounds {
  readonly maxLen?: number;
  readonly maxAgeMs?: number;
}

/** How the contract reaches one engine. */
export interface Engine {
  /** The column of docs/engines.md. */
  readonly name: string;
  /** A namespace (key prefix, stream name) no other test uses. */
  namespace(): string;
  /** One node on `namespace`; `port` routes it through a proxy on that local port. */
  open(namespace: string, bounds?: Bounds, port?: number): Backplane;
  /** Where the engine listens (the target of the outage case's proxy). */
  readonly address?: URL;
  /** A node pointed at a port nothing listens on. */
  unreachable?(): Backplane;
  /** Deletes everything under `namespace`. */
  wipe(namespace: string): Promise<void>;
  /** Most nodes that can share a namespace (1: one process); cases use up to three. */
  readonly maxNodes?: number;
  /** How many updates over `maxLen` the engine may keep (approximate trimming). */
  readonly lengthSlack: number;
  /** The cases this engine does not keep, each with the reason (as in docs/engines.md). */
  readonly unsupported: Partial<Record<Case, string>>;
  /** Starts servers the engine needs (before its first case); they stop in `stop`. */
  start?(): Promise<void>;
  /** Stops what `start` started (after the engine's last case). */
  stop?(): Promise<void>;
}

const DOCS = new URL("../docs/engines.md", import.meta.url);

/**
 * Registers the contract's tests for `engine`; `skip` (the engine is not reachable here) skips
 * them locally, and is an error in CI. `proxy` makes a cuttable proxy to the engine's address.
 */
export function contract(
  engine: Engine,
  skip: string | undefined,
  proxy?: (target: URL) => Proxy,
): void {
  describe(`the backplane contract on ${engine.name}`, { timeout: 60_000 }, () => {
    const opened: Backplane[] = [];
    const namespaces: string[] = [];
    before(async () => {
      if (skip === undefined) await engine.start?.();
    });
    // Bounded, so that an engine whose close or wipe hangs is named here, not as the file's timeout.
    after(
      async () => {
        await Promise.all(opened.map((b) => b.close()));
        if (skip === undefined) await Promise.all(namespaces.map((n) => engine.wipe(n)));
        await engine.stop?.();
      },
      { timeout: 30_000 },
    );

    /** Nodes on one fresh namespace, started; each records what it delivered. */
    async function nodes(count: number, bounds?: Bounds, namespace = engine.namespace()) {
      namespaces.push(namespace);
      const n = Math.min(count, engine.maxNodes ?? count);
      const started = await Promise.all(
        Array.from({ length: n }, () => startNode(engine.open(namespace, bounds))),
      );
      // With one node, it is every node.
      return Array.from({ length: count }, (_, i) => started[i % started.length] as Node);
    }

    async function startNode(backplane: Backplane): Promise<Node> {
      opened.push(backplane);
      const node: Node = { backplane, delivered: [], resets: 0 };
      await backplane.start(
        (update) => node.delivered.push(update),
        () => node.resets++,
      );
      return node;
    }

    const cases: Record<Case, () => Promise<void>> = {
      async order() {
        const [a, b] = (await nodes(2)) as [Node, Node];
        // Both nodes publish at once, interleaved: the engine alone decides the order.
        const acked = (
          await Promise.all(
            Array.from({ length: 60 }, (_, i) =>
              (i % 2 === 0 ? a : b).backplane.publish(fields(`${i}`)),
            ),
          )
        ).map((u) => u.id);
        await until(() => a.delivered.length >= 60 && b.delivered.length >= 60, "60 on each");
        assert.deepEqual(ids(a.delivered), ids(b.delivered));
        assert.deepEqual([...ids(a.delivered)].sort(), [...acked].sort());
        assert.deepEqual(ids((await replayed(a.backplane, "earliest"))?.updates), ids(a.delivered));
      },

      async concurrent() {
        const three = (await nodes(3)) as [Node, Node, Node];
        // Every node has many publishes in flight at once: a node that delivers its own
        // publishes early must still deliver them in the one order the engine stores.
        const acked = (
          await Promise.all(
            Array.from({ length: 120 }, (_, i) =>
              (three[i % 3] as Node).backplane.publish(fields(`${i}`)),
            ),
          )
        ).map((u) => u.id);
        await until(() => three.every((n) => n.delivered.length >= 120), "120 on each node");
        const stored = ids((await replayed(three[0].backplane, "earliest"))?.updates);
        assert.deepEqual([...stored].sort(), [...acked].sort());
        for (const node of three) assert.deepEqual(ids(node.delivered), stored);
      },

      async ids() {
        const [a, b] = (await nodes(2)) as [Node, Node];
        const mine = await a.backplane.publish(fields("mine", "urn:crier:contract:1"));
        assert.equal(mine.id, "urn:crier:contract:1");
        const generated = await a.backplane.publish(fields("generated"));
        const last = await b.backplane.publish(fields("last"));
        await until(() => a.delivered.length >= 3 && b.delivered.length >= 3, "3 on each");
        for (const node of [a, b]) {
          const fromMine = await replayed(node.backplane, mine.id);
          assert.deepEqual(ids(fromMine?.updates), [generated.id, last.id]);
          const fromGenerated = await replayed(node.backplane, generated.id);
          assert.deepEqual(ids(fromGenerated?.updates), [last.id]);
          assert.deepEqual(ids((await replayed(node.backplane, last.id))?.updates), []);
        }
        assert.deepEqual(
          b.delivered.map((u) => u.data),
          ["mine", "generated", "last"],
        );
      },

      async duplicate() {
        const [a, b] = (await nodes(2)) as [Node, Node];
        await a.backplane.publish(fields("first", "dup"));
        for (const node of [a, b]) {
          await assert.rejects(node.backplane.publish(fields("again", "dup")), (err) =>
            isCrierError(err, "CRIER_ERR_DUPLICATE_ID"),
          );
        }
        await a.backplane.publish(fields("after"));
        await until(() => b.delivered.length >= 2, "2 delivered");
        assert.deepEqual(
          b.delivered.map((u) => u.data),
          ["first", "after"],
        );
      },

      async unknown() {
        const namespace = engine.namespace();
        const [a] = (await nodes(1, { maxLen: 5 }, namespace)) as [Node];
        // Enough that even an engine that trims approximately has trimmed the first.
        const count = 40 + engine.lengthSlack;
        const published: string[] = [];
        for (let i = 0; i < count; i++) {
          published.push((await a.backplane.publish(fields(`${i}`))).id);
        }
        await until(() => a.delivered.length >= count, `${count} delivered`);
        assert.equal(await replayed(a.backplane, "never-published"), undefined);
        assert.equal(await replayed(a.backplane, published[0] as string), undefined, "trimmed");
        const [secondLast, last] = published.slice(-2) as [string, string];
        const recent = await replayed(a.backplane, secondLast);
        assert.deepEqual(ids(recent?.updates), [last]);
        // The history is replaced (flushed, deleted, another process): ids from before are of
        // another epoch, even where a new update sits at the same position.
        await a.backplane.close();
        await engine.wipe(namespace);
        const [c] = (await nodes(1, { maxLen: 5 }, namespace)) as [Node];
        for (let i = 0; i < count; i++) await c.backplane.publish(fields(`new ${i}`));
        await until(() => c.delivered.length >= count, "all delivered in the new history");
        assert.equal(await replayed(c.backplane, secondLast), undefined, "old epoch");
        assert.equal(await replayed(c.backplane, last), undefined, "old epoch");
      },

      async length() {
        const [a] = (await nodes(1, { maxLen: 10 })) as [Node];
        const published: string[] = [];
        for (let i = 0; i < 300; i++)
          published.push((await a.backplane.publish(fields(`${i}`))).id);
        await until(() => a.delivered.length >= 300, "300 delivered");
        const size = await a.backplane.size?.();
        assert.ok(size !== undefined && size >= 10 && size <= 10 + engine.lengthSlack, `${size}`);
        const held = ids((await replayed(a.backplane, "earliest"))?.updates);
        assert.ok(held.length >= 10 && held.length <= 10 + engine.lengthSlack, `${held.length}`);
        // What is held is the newest, in order: a suffix of what was published.
        assert.deepEqual(held, published.slice(-held.length));
      },

      async age() {
        const [a] = (await nodes(1, { maxLen: 100_000, maxAgeMs: 500 })) as [Node];
        const old = await a.backplane.publish(fields("old"));
        await until(() => a.delivered.length >= 1, "1 delivered");
        // Waiting, not timing: the engine trims on its own clock; a publish may be what trims.
        await until(
          async () => {
            await a.backplane.publish(fields("new"));
            return (await replayed(a.backplane, old.id)) === undefined;
          },
          "the old update trimmed by age",
          20_000,
        );
        const size = await a.backplane.size?.();
        assert.ok(size !== undefined && size < a.delivered.length + 1);
      },

      async unavailable() {
        const [b] = (await nodes(1)) as [Node];
        const down = engine.unreachable?.() as Backplane;
        opened.push(down);
        void down.start(() => assert.fail("an unreachable node delivered"));
        const started = Date.now();
        await assert.rejects(down.publish(fields("lost")), (err) =>
          isCrierError(err, "CRIER_ERR_UNAVAILABLE"),
        );
        await assert.rejects(Promise.resolve(down.replay("earliest")), (err) =>
          isCrierError(err, "CRIER_ERR_UNAVAILABLE"),
        );
        // A bound on hanging (a publish that waits for the engine to return), not a speed test.
        assert.ok(Date.now() - started < 10_000, "refused without waiting for the engine");
        const marker = await b.backplane.publish(fields("marker"));
        await until(() => b.delivered.length >= 1, "the marker delivered");
        assert.deepEqual(ids(b.delivered), [marker.id]);
      },

      async newest() {
        const namespace = engine.namespace();
        const [a] = (await nodes(1, undefined, namespace)) as [Node];
        let last: Update | undefined;
        for (const data of ["1", "2", "3"]) last = await a.backplane.publish(fields(data));
        await until(() => a.delivered.length === 3, "3 delivered");
        // A node (re)started now: nothing more is published, so it delivers nothing, yet a
        // stream opened on it names the newest id (the hub's `Last-Event-ID`, the subscription
        // API's `lastEventID`), not none, which would read as `earliest`.
        const late = await startNode(engine.open(namespace));
        assert.equal(await late.backplane.lastEventId(), last?.id);
        assert.equal(late.backplane.newestAtStart?.()?.id, last?.id);
        assert.equal(late.delivered.length, 0);
        // Once it delivers, the newest is what it delivered.
        const next = await a.backplane.publish(fields("4"));
        await until(() => late.delivered.length === 1, "the next on the new node");
        assert.equal(await late.backplane.lastEventId(), next.id);
      },

      async outage() {
        assert.ok(proxy !== undefined && engine.address !== undefined);
        const link = proxy(engine.address);
        await link.open();
        const namespace = engine.namespace();
        namespaces.push(namespace);
        const a = await startNode(engine.open(namespace, {}, link.port));
        const [b] = (await nodes(1, {}, namespace)) as [Node];
        await b.backplane.publish(fields("before"));
        await until(() => a.delivered.length >= 1, "a delivered the first update");
        await link.cut();
        // While a's engine is away, b goes on; a refuses publishes, and stores none of them.
        const during: string[] = [];
        for (let i = 0; i < 50; i++) during.push((await b.backplane.publish(fields(`${i}`))).id);
        const refused = await Promise.allSettled([a.backplane.publish(fields("refused"))]);
        assert.equal(refused[0]?.status, "rejected");
        await link.open();
        const afterwards = await b.backplane.publish(fields("after"));
        await until(() => a.delivered.length >= 52, "a caught up", 30_000);
        assert.deepEqual(ids(a.delivered), ids(b.delivered));
        assert.deepEqual(ids(a.delivered).slice(1), [...during, afterwards.id]);
        assert.ok(!a.delivered.some((u) => u.data === "refused"));
        assert.equal(a.resets, 0);
        await link.cut();
      },
    };

    for (const [name, run] of Object.entries(cases) as [Case, () => Promise<void>][]) {
      const reason = engine.unsupported[name];
      if (reason === undefined) {
        test(CASES[name], { skip }, run);
      } else {
        test(`${CASES[name]}: unsupported, and docs/engines.md says why`, () => {
          assert.equal(cell(engine.name, name), `no: ${reason}`);
        });
      }
    }

    test("docs/engines.md marks every case this engine keeps as kept", () => {
      for (const name of Object.keys(CASES) as Case[]) {
        if (engine.unsupported[name] === undefined) assert.equal(cell(engine.name, name), "yes");
      }
    });
  });
}

/** A TCP proxy that can be cut and opened again (test/redis-harness.ts's `CuttableProxy`). */
export interface Proxy {
  port: number;
  open(): Promise<void>;
  cut(): Promise<void>;
}

interface Node {
  readonly backplane: Backplane;
  readonly delivered: Update[];
  resets: number;
}

function fields(data: string, id?: string) {
  return { topics: ["https://example.com/contract"], data, id, private: false };
}

function ids(updates: readonly Update[] | undefined): string[] {
  return (updates ?? []).map((u) => u.id);
}

/** The text of the docs table's cell for `engine` and `name` ("yes", or "no: <reason>"). */
export function cell(engine: string, name: Case): string {
  const rows = readFileSync(DOCS, "utf8")
    .split("\n")
    .filter((line) => line.startsWith("|"))
    .map((line) =>
      line
        .slice(1, -1)
        .split("|")
        .map((c) => c.trim()),
    );
  const header = rows[0] ?? [];
  const column = header.indexOf(engine);
  const row = rows.find((r) => r[0] === CASES[name]);
  assert.ok(column > 0, `docs/engines.md has no column for ${engine}`);
  assert.ok(row !== undefined, `docs/engines.md has no row for "${CASES[name]}"`);
  return row[column] ?? "";
}
