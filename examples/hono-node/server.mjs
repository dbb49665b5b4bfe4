// The Mercure hub in a Hono app on Node (@hono/node-server): `node server.mjs`. The node:http
// handler answers the raw request and response itself, so the route returns
// RESPONSE_ALREADY_SENT: without it Hono would answer too, and node:http would throw
// ERR_HTTP_HEADERS_SENT. (On any runtime, the Fetch handler works too: see ../hono.)
import { serve } from "@hono/node-server";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { createHub } from "crier-hub";
import { createHandler } from "crier-hub/mercure";
import { Hono } from "hono";

const SECRET = process.env.MERCURE_JWT_SECRET ?? "!ChangeThisMercureHubJWTSecretKey!";

const hub = createHub();
const mercure = createHandler({
  hub,
  publisherKey: SECRET,
  subscriberKey: SECRET,
  anonymous: true,
});
const app = new Hono();
app.all("/.well-known/mercure/*", (c) => {
  mercure(c.env.incoming, c.env.outgoing);
  return RESPONSE_ALREADY_SENT;
});
app.get("/", (c) => c.text("the app's own page"));

const server = serve(
  { fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: "127.0.0.1" },
  ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
);
process.once("SIGTERM", () => hub.close().then(() => server.close(() => process.exit(0))));
