// One hub per server process. In `next dev` a module can be evaluated again after an edit:
// the hub is kept on globalThis so that subscribers and publishers keep meeting on one.
import { createHub, type Hub } from "crier-hub";
import { createFetchHandler, type FetchHandler } from "crier-hub/mercure";

const SECRET = process.env.MERCURE_JWT_SECRET ?? "!ChangeThisMercureHubJWTSecretKey!";

const shared = globalThis as { crierMercure?: { hub: Hub; handler: FetchHandler } };
if (shared.crierMercure === undefined) {
  const hub = createHub();
  const handler = createFetchHandler({
    hub,
    publisherKey: SECRET,
    subscriberKey: SECRET,
    anonymous: true,
  });
  shared.crierMercure = { hub, handler };
}

export const { hub, handler: mercure } = shared.crierMercure;
