// The Mercure hub in a Hono app on the Fetch API, for any runtime Hono runs on:
// `bun run app.ts`, `deno serve -A app.ts`, or `app.fetch` behind @hono/node-server.
import { createHub } from "crier-hub";
import { createFetchHandler } from "crier-hub/mercure";
import { Hono } from "hono";

const SECRET = process.env.MERCURE_JWT_SECRET ?? "!ChangeThisMercureHubJWTSecretKey!";

export const hub = createHub();
const mercure = createFetchHandler({
  hub,
  publisherKey: SECRET,
  subscriberKey: SECRET,
  anonymous: true,
});

const app = new Hono();
// The handler routes by the request's full URL, which Hono leaves as it came.
app.all("/.well-known/mercure/*", (c) => mercure(c.req.raw));
app.get("/", (c) => c.text("the app's own page"));

// What `bun run` and `deno serve` look for. Bun closes a connection idle for 10 s unless told
// otherwise, and an event stream is idle between events.
export default { fetch: app.fetch, idleTimeout: 0 };
