// The Mercure hub inside an Express app, mounted at its path: `node server.mjs`. The app's
// own routes stay the app's; POST /messages publishes from app code with hub.publish().

import { createHub } from "crier-hub";
import { createHandler } from "crier-hub/mercure";
import express from "express";

const SECRET = process.env.MERCURE_JWT_SECRET ?? "!ChangeThisMercureHubJWTSecretKey!";

const hub = createHub();
const app = express();
// Express strips the mount path from req.url; the handler routes by req.originalUrl.
app.use(
  "/.well-known/mercure",
  createHandler({ hub, publisherKey: SECRET, subscriberKey: SECRET, anonymous: true }),
);
app.post("/messages", express.urlencoded({ extended: false }), async (req, res) => {
  const update = await hub.publish({ topics: req.body.topic, data: req.body.data });
  res.type("text/plain").send(update.id);
});

const server = app.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
process.once("SIGTERM", () => hub.close().then(() => server.close(() => process.exit(0))));
