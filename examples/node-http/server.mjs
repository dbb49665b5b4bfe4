// The Mercure hub on a plain node:http server: `node server.mjs`, then subscribe at
// http://localhost:3000/.well-known/mercure?topic=… and publish with a token signed by SECRET.
import { createServer } from "node:http";
import { createHub } from "crier-hub";
import { createHandler, shutdown } from "crier-hub/mercure";

const SECRET = process.env.MERCURE_JWT_SECRET ?? "!ChangeThisMercureHubJWTSecretKey!";

const hub = createHub();
const server = createServer(
  createHandler({ hub, publisherKey: SECRET, subscriberKey: SECRET, anonymous: true }),
);

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
// Subscribers are told to come back (retry), publishes in flight are stored, then it exits.
process.once("SIGTERM", () => shutdown(server, hub).then(() => process.exit(0)));
