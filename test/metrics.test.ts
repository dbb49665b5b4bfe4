import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { Registry } from "prom-client";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { type Metrics, registerMetrics } from "../src/ops/metrics.ts";
import { openStream, publish, SECRET, startHub, type TestHub, until } from "./helpers.ts";

/** The value of one sample line (`name{labels} value`) of the exposition, or undefined. */
function sample(text: string, line: string): number | undefined {
  for (const l of text.split("\n")) {
    if (l.startsWith(`${line} `)) return Number(l.slice(line.length + 1));
  }
  return undefined;
}

describe("metrics", () => {
  let hub: TestHub | undefined;
  let metrics: Metrics | undefined;
  afterEach(async () => {
    metrics?.close();
    await hub?.close();
  });

  test("counts subscribers, selectors by kind, publishes by outcome, deliveries and disconnects", async () => {
    const registry = new Registry();
    let routes: Metrics | undefined;
    hub = await startHub({}, { routes: { "/metrics": (req, res) => routes?.handler(req, res) } });
    metrics = registerMetrics({ hub: hub.hub, registry });
    routes = metrics;
    const base = hub.url.replace("/.well-known/mercure", "");
    const a = await openStream(`${hub.url}?topic=a`);
    const b = await openStream(`${hub.url}?topic=${encodeURIComponent("b/{id}")}&topic=*`);
    await a.waitForComment();
    await b.waitForComment();
    assert.equal(
      (await publish(hub.url, { topic: "a", data: "x" }, hub.publisherToken)).status,
      200,
    );
    const narrow = await mintToken(SECRET, { publish: ["z"] });
    assert.equal((await publish(hub.url, { topic: "a", data: "x" }, narrow)).status, 403);
    assert.equal((await publish(hub.url, { topic: "a", data: "x" })).status, 401);
    await a.waitForEvents(1);
    await b.waitForEvents(1);

    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.equal(sample(text, "crier_subscribers"), 2);
    assert.equal(sample(text, 'crier_subscription_selectors{kind="exact"}'), 1);
    assert.equal(sample(text, 'crier_subscription_selectors{kind="template"}'), 1);
    assert.equal(sample(text, 'crier_subscription_selectors{kind="any"}'), 1);
    assert.equal(sample(text, 'crier_publishes_total{outcome="accepted",status="200"}'), 1);
    assert.equal(
      sample(text, 'crier_publishes_total{outcome="CRIER_ERR_FORBIDDEN",status="403"}'),
      1,
    );
    assert.equal(
      sample(text, 'crier_publishes_total{outcome="CRIER_ERR_UNAUTHORIZED",status="401"}'),
      1,
    );
    assert.equal(sample(text, "crier_events_delivered_total"), 2);
    assert.ok((sample(text, "crier_bytes_written_total") ?? 0) > 0);
    assert.equal(sample(text, "crier_history_events"), 1);
    // Between turns the fan-out backlog is empty; nothing was held back or refused.
    assert.equal(sample(text, "crier_backlog_seconds"), 0);
    assert.equal(sample(text, "crier_backlog_updates"), 0);
    assert.equal(sample(text, "crier_backlog_bytes"), 0);
    assert.equal(sample(text, "crier_publishes_held_total"), 0);
    assert.equal(sample(text, "crier_publishes_refused_total"), 0);
    assert.match(text, /crier_build_info\{version="\d+\.\d+\.\d+[^"]*",node="v\d+/);
    assert.ok(!text.includes("topic=a"), "no metric is labelled by topic");

    a.close();
    await until(() => hub?.hub.stats.subscribers === 1, "the disconnect");
    const after = await registry.metrics();
    assert.equal(sample(after, 'crier_disconnects_total{reason="client"}'), 1);
    assert.equal(sample(after, 'crier_subscription_selectors{kind="exact"}'), 0);
    b.close();
  });

  test("counts a resume and one told earliest", async () => {
    hub = await startHub();
    metrics = registerMetrics({ hub: hub.hub });
    await publish(hub.url, { topic: "a", data: "1", id: "1" }, hub.publisherToken);
    await publish(hub.url, { topic: "a", data: "2", id: "2" }, hub.publisherToken);
    const resumed = await openStream(`${hub.url}?topic=a`, { "Last-Event-ID": "1" });
    const gone = await openStream(`${hub.url}?topic=a`, { "Last-Event-ID": "nope" });
    await resumed.waitForEvents(1);
    await gone.waitForComment();
    const text = await metrics.registry.metrics();
    assert.equal(sample(text, "crier_resumes_total"), 2);
    assert.equal(sample(text, "crier_resumes_earliest_total"), 1);
    resumed.close();
    gone.close();
  });
});
