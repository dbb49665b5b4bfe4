/**
 * `GET /`: a small self-contained page saying what this server is and how to use it. One static
 * string, no external resources, no script; served with a CSP that allows nothing else, except
 * connections back to this origin (so a console on the page can open an EventSource).
 */
import type { Exchange } from "./exchange.ts";

export const HOME_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Crier hub</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  code, pre { font: 14px ui-monospace, monospace; background: #f3f3f3; }
  pre { padding: .75rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>Crier hub</h1>
<p>This server is a <a href="https://mercure.rocks/spec">Mercure</a> hub: it relays updates
from publishers to subscribers as Server-Sent Events, and lets a subscriber that lost its
connection resume where it left off.</p>
<h2>Subscribe</h2>
<pre>const url = new URL("/.well-known/mercure", location.origin);
url.searchParams.append("topic", "https://example.com/books/{id}");
const source = new EventSource(url, { withCredentials: true });
source.onmessage = (event) =&gt; console.log(event.lastEventId, event.data);</pre>
<p>Selectors: <code>topic</code> (an exact topic, <code>*</code> or a URI template),
<code>match</code> (exact) and <code>match_urlpattern</code> (a URL pattern). Private updates
need a token in an <code>Authorization: Bearer</code> header or a
<code>mercureAuthorization</code> cookie.</p>
<h2>Publish</h2>
<pre>curl -d topic=https://example.com/books/1 -d data=hello \\
  -H "Authorization: Bearer $TOKEN" https://this-hub/.well-known/mercure</pre>
<h2>More</h2>
<ul>
<li><code>GET /.well-known/mercure/subscriptions</code>: active subscriptions, when enabled
(<code>--subscriptions</code>)</li>
<li><code>GET /healthz</code>: health check</li>
</ul>
</body>
</html>
`;

const HEADERS = {
  "Content-Type": "text/html; charset=utf-8",
  "Content-Security-Policy":
    "default-src 'none'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-cache",
};

/** Answers the home page. */
export function sendHomePage(ex: Exchange): void {
  ex.reply(200, HEADERS, HOME_PAGE);
}
