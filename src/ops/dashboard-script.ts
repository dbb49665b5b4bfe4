/**
 * The dashboard page's script (see `dashboard-page.ts`), plain browser JavaScript in a string:
 * no build step. It follows `/dashboard.json` as an event stream over `fetch` (so the token goes
 * in a header), draws the figures, tails a selector and publishes from the form. No template
 * literals inside: the whole of it is one.
 */

/** The script, as inlined in the page (and allowed by its hash). */
export const DASHBOARD_SCRIPT = `
"use strict";
const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;
let token = "";
const fromHash = /(?:^#|&)token=([^&]+)/.exec(location.hash);
if (fromHash) {
  token = decodeURIComponent(fromHash[1]);
  store.setItem("crierDashboardToken", token);
  history.replaceState(null, "", location.pathname);
} else token = store.getItem("crierDashboardToken") || "";
$("token").value = token;
const auth = (t) => (t ? { Authorization: "Bearer " + t } : {});
const fmt = (n) => (n === null || n === undefined ? "-" : Number(n).toLocaleString("en"));

// A small event-stream reader over fetch: [spec] lines end in CRLF, LF or CR; a blank line
// dispatches the event; a line starting with a colon is a comment.
async function readEvents(res, onEvent, signal) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = { data: [], id: "", type: "" };
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}));
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split(/\\r\\n|\\r|\\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (event.data.length > 0) onEvent({ id: event.id, type: event.type, data: event.data.join("\\n") });
        event = { data: [], id: event.id, type: "" };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let field = colon < 0 ? "" : line.slice(colon + 1);
      if (field.startsWith(" ")) field = field.slice(1);
      if (name === "data") event.data.push(field);
      else if (name === "id") event.id = field;
      else if (name === "event") event.type = field;
    }
  }
}

function chart(svg, values, color) {
  const w = 300, h = 70, max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const points = values.map((v, i) => (i * step).toFixed(1) + "," + (h - 4 - (v / max) * (h - 8)).toFixed(1));
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.replaceChildren();
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", color);
  line.setAttribute("stroke-width", "1.5");
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(line);
  svg.dataset.max = String(max);
}

function rows(table, entries) {
  table.replaceChildren(...entries.map(([name, n]) => {
    const tr = document.createElement("tr");
    const a = document.createElement("td");
    const b = document.createElement("td");
    a.textContent = name;
    b.textContent = fmt(n);
    b.className = "n";
    tr.append(a, b);
    return tr;
  }));
}

function render(s) {
  const last = s.series[s.series.length - 1];
  $("subscribers").textContent = fmt(s.subscribers);
  $("publishes").textContent = fmt(last ? last.publishesPerSec : 0);
  $("deliveries").textContent = fmt(last ? last.deliveriesPerSec : 0);
  $("published").textContent = fmt(s.published);
  $("delivered").textContent = fmt(s.delivered);
  $("queued").textContent = fmt(s.queuedBytes);
  $("history").textContent = fmt(s.historyEvents);
  $("dropped").textContent = fmt(s.dropped);
  $("version").textContent = "v" + s.version + " on Node " + s.node + ", up " + fmt(s.uptimeSeconds) + " s";
  const state = s.closing ? "draining" : s.backplane;
  $("backplane").textContent = state;
  $("backplane").className = "state " + (s.closing ? "down" : s.backplane);
  chart($("chart-publishes"), s.series.map((x) => x.publishesPerSec), "#1f6feb");
  chart($("chart-deliveries"), s.series.map((x) => x.deliveriesPerSec), "#8250df");
  chart($("chart-subscribers"), s.series.map((x) => x.subscribers), "#2e7d32");
  rows($("disconnects"), Object.entries(s.disconnects).sort((a, b) => b[1] - a[1]));
  rows($("selectors"), Object.entries(s.selectors));
  const topics = s.topics.map((t) => [t.topic, t.updates]);
  if (s.otherTopics > 0) topics.push(["(other topics)", s.otherTopics]);
  rows($("topics"), topics);
  $("status").textContent = "live";
  $("status").className = "state up";
}

let figures;
async function follow() {
  figures?.abort();
  const controller = new AbortController();
  figures = controller;
  try {
    const res = await fetch("/dashboard.json", {
      headers: { Accept: "text/event-stream", ...auth(token) },
      signal: controller.signal,
    });
    if (!res.ok) {
      const reason = (await res.text()).trim();
      $("status").textContent = res.status + ": " + reason;
      $("status").className = "state error";
      // A refused token stays refused: wait for another one.
      if (res.status === 401 || res.status === 403) return;
    } else await readEvents(res, (e) => render(JSON.parse(e.data)), controller.signal);
  } catch (err) {
    if (controller.signal.aborted) return;
    $("status").textContent = "disconnected: " + err.message;
    $("status").className = "state error";
  }
  if (!controller.signal.aborted) setTimeout(follow, 2000);
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  store.setItem("crierDashboardToken", token);
  follow();
});

let tail;
$("tail-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  tail?.abort();
  const list = $("tail");
  if ($("tail-button").textContent === "Stop") {
    $("tail-button").textContent = "Tail";
    return;
  }
  const controller = new AbortController();
  tail = controller;
  $("tail-button").textContent = "Stop";
  const url = new URL("/.well-known/mercure", location.origin);
  url.searchParams.append("topic", $("tail-topic").value);
  const add = (text, cls) => {
    const li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    list.prepend(li);
    while (list.children.length > 100) list.lastChild.remove();
  };
  try {
    const res = await fetch(url, {
      headers: { Accept: "text/event-stream", ...auth($("tail-token").value.trim() || token) },
      signal: controller.signal,
    });
    if (!res.ok) add("refused: " + res.status + " " + (await res.text()).trim(), "error");
    else {
      add("tailing " + $("tail-topic").value, "muted");
      await readEvents(res, (ev) => add(ev.id + (ev.type ? " [" + ev.type + "]" : "") + "  " + ev.data), controller.signal);
    }
  } catch (err) {
    if (!controller.signal.aborted) add("ended: " + err.message, "error");
  }
  if (tail === controller) $("tail-button").textContent = "Tail";
});

$("publish-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = new URLSearchParams({ topic: $("publish-topic").value, data: $("publish-data").value });
  if ($("publish-private").checked) body.set("private", "on");
  try {
    const res = await fetch("/.well-known/mercure", {
      method: "POST",
      body,
      headers: auth($("publish-token").value.trim() || token),
    });
    const text = (await res.text()).trim();
    $("publish-result").textContent = res.ok ? "published " + text : "refused: " + res.status + " " + text;
    $("publish-result").className = res.ok ? "up" : "error";
  } catch (err) {
    $("publish-result").textContent = "failed: " + err.message;
    $("publish-result").className = "error";
  }
});

follow();
`;
