/**
 * The dashboard page: one self-contained HTML document (its style and script inline, no CDN, no
 * build step). It reads the hub's figures from `/dashboard.json` as an event stream (one
 * snapshot a second, over `fetch` so that the token goes in an `Authorization` header, never in
 * a URL), tails a topic selector through the Mercure endpoint, and publishes from a form.
 *
 * The token comes from the page's fragment (`/#token=…`: a fragment is never sent to the
 * server, so it reaches no log) or the token field, and is kept in the tab's sessionStorage.
 * The script is allowed by its hash in the Content-Security-Policy, and nothing else is.
 */
import { createHash } from "node:crypto";
import { DASHBOARD_SCRIPT as SCRIPT } from "./dashboard-script.ts";

const STYLE = `
  :root { --fg: #1d2127; --muted: #667; --line: #dde; --accent: #1f6feb; --bad: #c62828; --ok: #2e7d32; }
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: var(--fg); background: #f6f7f9; }
  header { display: flex; gap: 1rem; align-items: baseline; padding: .75rem 1.25rem; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.1rem; margin: 0; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; padding: 1rem 1.25rem; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; }
  h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 .5rem; }
  .figures { display: grid; grid-template-columns: repeat(3, 1fr); gap: .5rem; }
  .figure b { display: block; font-size: 1.6rem; font-variant-numeric: tabular-nums; }
  .figure span { color: var(--muted); font-size: .8rem; }
  svg { width: 100%; height: 70px; display: block; background: #fafbfc; border: 1px solid #eef; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  td { padding: .15rem .25rem; border-bottom: 1px solid #f0f0f4; word-break: break-all; }
  td.n { text-align: right; width: 6rem; }
  input[type=text], textarea { width: 100%; box-sizing: border-box; font: 13px ui-monospace, monospace; padding: .3rem; margin: .15rem 0; }
  button { font: inherit; padding: .25rem .75rem; }
  #tail { list-style: none; padding: 0; margin: .5rem 0 0; max-height: 16rem; overflow: auto; font: 12px ui-monospace, monospace; }
  #tail li { border-bottom: 1px solid #f0f0f4; padding: .15rem 0; white-space: pre-wrap; word-break: break-all; }
  .state { font-weight: 600; }
  .up, .memory { color: var(--ok); } .down, .error { color: var(--bad); }
  .muted { color: var(--muted); }
`;

/** The page, as served at `/` when the dashboard is on. */
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Crier dashboard</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>Crier</h1>
  <span id="version" class="muted"></span>
  <span>backplane: <span id="backplane" class="state">-</span></span>
  <span>figures: <span id="status" class="state">connecting</span></span>
  <form id="token-form" style="margin-left:auto;display:flex;gap:.25rem">
    <input id="token" type="text" placeholder="token with the admin right" autocomplete="off" style="width:18rem">
    <button>Use</button>
  </form>
</header>
<main>
<section>
  <h2>Now</h2>
  <div class="figures">
    <div class="figure"><b id="subscribers">-</b><span>subscribers</span></div>
    <div class="figure"><b id="publishes">-</b><span>publishes/s</span></div>
    <div class="figure"><b id="deliveries">-</b><span>deliveries/s</span></div>
    <div class="figure"><b id="published">-</b><span>updates since start</span></div>
    <div class="figure"><b id="delivered">-</b><span>deliveries since start</span></div>
    <div class="figure"><b id="queued">-</b><span>bytes queued</span></div>
    <div class="figure"><b id="history">-</b><span>events in history</span></div>
    <div class="figure"><b id="dropped">-</b><span>updates dropped</span></div>
  </div>
</section>
<section>
  <h2>Publishes/s, last minutes</h2><svg id="chart-publishes"></svg>
  <h2 style="margin-top:.5rem">Deliveries/s</h2><svg id="chart-deliveries"></svg>
  <h2 style="margin-top:.5rem">Subscribers</h2><svg id="chart-subscribers"></svg>
</section>
<section>
  <h2>Busiest topics (last 1-2 minutes)</h2><table id="topics"></table>
  <h2 style="margin-top:.75rem">Disconnects by reason</h2><table id="disconnects"></table>
  <h2 style="margin-top:.75rem">Selectors by kind</h2><table id="selectors"></table>
</section>
<section>
  <h2>Tail</h2>
  <form id="tail-form">
    <input id="tail-topic" type="text" placeholder="topic selector: a topic, * or a URI template" value="*">
    <input id="tail-token" type="text" placeholder="subscriber token (default: the token above)" autocomplete="off">
    <button id="tail-button">Tail</button>
  </form>
  <ul id="tail"></ul>
</section>
<section>
  <h2>Publish</h2>
  <form id="publish-form">
    <input id="publish-topic" type="text" placeholder="topic" required>
    <textarea id="publish-data" rows="3" placeholder="data"></textarea>
    <label><input id="publish-private" type="checkbox"> private</label>
    <input id="publish-token" type="text" placeholder="publisher token (default: the token above)" autocomplete="off">
    <button>Publish</button> <span id="publish-result"></span>
  </form>
</section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

const scriptHash = createHash("sha256").update(SCRIPT).digest("base64");

/** Headers of the page: only its own script runs, and it talks only to this origin. */
export const DASHBOARD_PAGE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/html; charset=utf-8",
  "Content-Length": String(Buffer.byteLength(DASHBOARD_PAGE)),
  "Content-Security-Policy": `default-src 'none'; script-src 'sha256-${scriptHash}'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-cache",
  "Referrer-Policy": "no-referrer",
};
