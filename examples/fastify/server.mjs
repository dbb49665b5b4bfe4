// The Mercure hub inside a Fastify app: `node server.mjs`. Fastify hands the raw node:http
// request and response to the handler, which answers them itself (reply.hijack()).

import { createHub } from "crier-hub";
import { createHandler } from "crier-hub/mercure";
import Fastify from "fastify";

const SECRET = process.env.MERCURE_JWT_SECRET ?? "!ChangeThisMercureHubJWTSecretKey!";

const hub = createHub();
const mercure = createHandler({
  hub,
  publisherKey: SECRET,
  subscriberKey: SECRET,
  anonymous: true,
});
const app = Fastify();
// Leave publish bodies unread: the handler reads and checks them (strict UTF-8, size limit).
app.addContentTypeParser("application/x-www-form-urlencoded", (_request, _payload, done) =>
  done(null),
);
for (const url of ["/.well-known/mercure", "/.well-known/mercure/*"]) {
  app.all(url, (request, reply) => {
    reply.hijack();
    mercure(request.raw, reply.raw);
  });
}
app.addHook("onClose", () => hub.close());

const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: "127.0.0.1" });
console.log(`listening on ${address}`);
process.once("SIGTERM", () => app.close().then(() => process.exit(0)));
