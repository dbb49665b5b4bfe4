// The Mercure hub on Deno:
// `deno run --allow-net --allow-env --allow-read --allow-sys server.ts`.
import { createHub } from "crier-hub";
import { createFetchHandler } from "crier-hub/mercure";

const SECRET = Deno.env.get("MERCURE_JWT_SECRET") ?? "!ChangeThisMercureHubJWTSecretKey!";

const hub = createHub();
// Deno passes the client's address beside the request: keep it where clientAddress finds it.
const addresses = new WeakMap<Request, string>();
const mercure = createFetchHandler({
  hub,
  publisherKey: SECRET,
  subscriberKey: SECRET,
  anonymous: true,
  clientAddress: (request) => addresses.get(request),
});

Deno.serve(
  {
    port: Number(Deno.env.get("PORT") ?? 3000),
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
  },
  (request, info) => {
    if (info.remoteAddr.transport === "tcp") addresses.set(request, info.remoteAddr.hostname);
    return mercure(request);
  },
);
Deno.addSignalListener("SIGTERM", () => hub.close().then(() => Deno.exit(0)));
