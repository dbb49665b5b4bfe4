// The Mercure hub on Bun: `bun run server.ts`.
import { createHub } from "crier-hub";
import { createFetchHandler } from "crier-hub/mercure";

const SECRET = process.env.MERCURE_JWT_SECRET ?? "!ChangeThisMercureHubJWTSecretKey!";

const hub = createHub();
const server = Bun.serve({
  port: Number(process.env.PORT ?? 3000),
  hostname: "127.0.0.1",
  // Bun closes a connection idle for 10 s by default; an event stream is idle between events.
  idleTimeout: 0,
  fetch: createFetchHandler({
    hub,
    publisherKey: SECRET,
    subscriberKey: SECRET,
    anonymous: true,
    clientAddress: (request) => server.requestIP(request)?.address,
  }),
});
console.log(`listening on http://127.0.0.1:${server.port}`);
process.once("SIGTERM", () => hub.close().then(() => process.exit(0)));
