/**
 * `crier publish`, `crier subscribe` and `crier token`: small clients of a running hub, signing
 * their own tokens with `--jwt-key` / `CRIER_JWT_KEY` when no `--token` is given.
 */
import { parseArgs } from "node:util";
import { createParser } from "eventsource-parser";
import { CrierError } from "../errors.ts";
import { MERCURE_PATH } from "../mercure/paths.ts";
import { readKey } from "../mercure/tokens/keys.ts";
import { mintAccessToken, mintToken, type TopicMatcher } from "../mercure/tokens/mint.ts";
import { log, UsageError } from "./output.ts";

/** The usage of each client command, for `crier COMMAND --help` and the top-level usage. */
export const CLIENT_USAGE = {
  publish: `crier publish TOPIC DATA [--url U] [--token T] [--jwt-key K] [--id ID] [--type T] [--private]
  Publishes DATA to TOPIC and prints the event id. Without --token, signs a token with --jwt-key
  or CRIER_JWT_KEY. --url defaults to http://localhost:$CRIER_PORT${MERCURE_PATH} (port 8080).`,
  subscribe: `crier subscribe TOPIC... [--url U] [--token T] [--jwt-key K] [--last-event-id ID]
  Prints each event as one JSON line ({id, data}, and type when it has one) until interrupted. Without --token or a
  key, subscribes anonymously.`,
  token: `crier token [--jwt-key K] [--publish SEL]... [--subscribe SEL]... [--admin] [--ttl SECONDS]
       crier token --draft-08 --audience HUB_URL --issuer ISS [--subject SUB] [--jwt-key K]
                   [--publish TOPIC]... [--subscribe TOPIC]... [--ttl SECONDS]
                   [--publish-urlpattern PATTERN]... [--subscribe-urlpattern PATTERN]...
  Prints a token signed with --jwt-key or CRIER_JWT_KEY. --admin grants the dashboard's figures.
  --draft-08 makes a draft-08 access token (aud, iss, topic matchers) instead of a v0.x one.
  --ttl defaults to 3600; 0: never expires.`,
} as const;

/** True (and the command's usage printed) when `argv` asks for help. */
export function helpAsked(command: keyof typeof CLIENT_USAGE, argv: readonly string[]): boolean {
  if (!argv.includes("--help") && !argv.includes("-h")) return false;
  process.stdout.write(`Usage: ${CLIENT_USAGE[command]}\n`);
  return true;
}

export async function publish(argv: string[]): Promise<number> {
  if (helpAsked("publish", argv)) return 0;
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...clientFlags,
      id: { type: "string" },
      type: { type: "string" },
      private: { type: "boolean" },
    },
  });
  const [topic, data] = positionals;
  if (topic === undefined || data === undefined || positionals.length > 2)
    throw new UsageError("publish needs TOPIC and DATA");
  const form = new URLSearchParams({ topic, data });
  if (values.id !== undefined) form.set("id", values.id);
  if (values.type !== undefined) form.set("type", values.type);
  if (values.private === true) form.set("private", "on");
  const res = await request(hubUrl(values.url), {
    method: "POST",
    body: form,
    headers: { Authorization: `Bearer ${await clientToken(values, { publish: [topic] })}` },
  });
  const body = (await res.text()).trim();
  if (!res.ok) {
    log(`publish failed: ${res.status} ${body}`);
    return 1;
  }
  process.stdout.write(`${body}\n`);
  return 0;
}

export async function subscribe(argv: string[]): Promise<number> {
  if (helpAsked("subscribe", argv)) return 0;
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...clientFlags, "last-event-id": { type: "string" } },
  });
  if (positionals.length === 0) throw new UsageError("subscribe needs at least one TOPIC");
  const url = hubUrl(values.url);
  for (const topic of positionals) url.searchParams.append("topic", topic);
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (values.token !== undefined || keyOf(values) !== undefined) {
    headers.Authorization = `Bearer ${await clientToken(values, { subscribe: positionals })}`;
  }
  if (values["last-event-id"] !== undefined) headers["Last-Event-ID"] = values["last-event-id"];
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  process.once("SIGTERM", () => controller.abort());
  try {
    const res = await request(url, { headers, signal: controller.signal });
    if (!res.ok || res.body === null) {
      log(`subscribe failed: ${res.status} ${(await res.text()).trim()}`);
      return 1;
    }
    const parser = createParser({
      onEvent: (event) =>
        process.stdout.write(
          `${JSON.stringify({ id: event.id, type: event.event, data: event.data })}\n`,
        ),
    });
    const decoder = new TextDecoder();
    for await (const chunk of res.body) parser.feed(decoder.decode(chunk, { stream: true }));
    return 0;
  } catch (err) {
    if (controller.signal.aborted) return 0;
    throw err;
  }
}

/** Lifetime of the tokens `crier token` mints, unless `--ttl` says otherwise. */
export const DEFAULT_TTL_SECONDS = 3600;

/**
 * `crier token`: a v0.x token (the `mercure` claim) by default; with `--draft-08`, a draft-08
 * access token (`typ: at+jwt`) for `--audience` (the hub's resource identifier) from `--issuer`
 * (the issuer the hub trusts). `--publish`/`--subscribe` are exact topics (or `*`);
 * `--publish-urlpattern`/`--subscribe-urlpattern` are URL patterns (draft-08 only).
 */
export async function token(argv: string[]): Promise<number> {
  if (helpAsked("token", argv)) return 0;
  const { values } = parseArgs({
    args: argv,
    options: {
      "jwt-key": { type: "string" },
      publish: { type: "string", multiple: true },
      subscribe: { type: "string", multiple: true },
      "publish-urlpattern": { type: "string", multiple: true },
      "subscribe-urlpattern": { type: "string", multiple: true },
      ttl: { type: "string" },
      "draft-08": { type: "boolean" },
      audience: { type: "string" },
      issuer: { type: "string" },
      subject: { type: "string" },
      admin: { type: "boolean" },
    },
  });
  const key = keyOf(values);
  if (key === undefined) throw new UsageError("token needs --jwt-key or CRIER_JWT_KEY");
  const ttl = values.ttl ?? String(DEFAULT_TTL_SECONDS);
  const ttlSeconds = Number(ttl);
  // Up to 100 years: the token's `exp` must stay a safe integer of seconds.
  if (!/^\d+$/.test(ttl) || ttlSeconds > MAX_TTL_SECONDS) {
    throw new UsageError(
      `--ttl must be whole seconds, up to ${MAX_TTL_SECONDS} (100 years; 0: never expires)`,
    );
  }
  if (ttlSeconds === 0) {
    log("warning: this token never expires (--ttl 0); it works until the key changes");
  }
  let jwt: string;
  if (values["draft-08"] === true) {
    if (values.audience === undefined || values.audience === "") {
      throw new UsageError("--draft-08 needs --audience, the hub's resource identifier");
    }
    if (values.issuer === undefined || values.issuer === "") {
      throw new UsageError("--draft-08 needs --issuer, the issuer the hub trusts (--jwt-issuer)");
    }
    const matchers = (exact: string[] = [], patterns: string[] = []): TopicMatcher[] => [
      ...exact.map((match) => ({ match })),
      ...patterns.map((match) => ({ match, match_type: "urlpattern" as const })),
    ];
    jwt = await mintAccessToken(key, {
      audience: values.audience,
      issuer: values.issuer,
      subject: values.subject,
      publish: matchers(values.publish, values["publish-urlpattern"]),
      subscribe: matchers(values.subscribe, values["subscribe-urlpattern"]),
      admin: values.admin,
      ttlSeconds: ttlSeconds === 0 ? undefined : ttlSeconds,
    });
  } else {
    for (const name of [
      "audience",
      "issuer",
      "subject",
      "publish-urlpattern",
      "subscribe-urlpattern",
    ] as const) {
      if (values[name] !== undefined) throw new UsageError(`--${name} needs --draft-08`);
    }
    jwt = await mintToken(key, {
      publish: values.publish,
      subscribe: values.subscribe,
      admin: values.admin,
      ttlSeconds: ttlSeconds === 0 ? undefined : ttlSeconds,
    });
  }
  process.stdout.write(`${jwt}\n`);
  return 0;
}

const clientFlags = {
  url: { type: "string" },
  token: { type: "string" },
  "jwt-key": { type: "string" },
} as const;

// fetch() says only "fetch failed"; its cause says why (ECONNREFUSED, ENOTFOUND, …). The hub is
// named without credentials or query string (a token may be in either).
async function request(url: URL, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    // A message may quote the URL, and with it a token in its query string.
    const why = (cause?.code ?? cause?.message ?? (err as Error).message).replaceAll(
      url.href,
      `${url.origin}${url.pathname}`,
    );
    throw new Error(`cannot reach the hub at ${url.origin}${url.pathname}: ${why}`, { cause: err });
  }
}

const MAX_TTL_SECONDS = 100 * 365 * 24 * 3600;

/**
 * The hub's URL: `--url`, or the default one on `CRIER_PORT`; a usage error naming the setting
 * when it is none. A user or password in it is refused (fetch would, printing the whole URL):
 * a client of the hub authenticates with a token.
 */
function hubUrl(given: string | undefined): URL {
  const port = process.env.CRIER_PORT ?? "8080";
  if (given === undefined && !(/^\d{1,5}$/.test(port) && Number(port) <= 65_535)) {
    throw wrong(`CRIER_PORT must be a port number, got ${JSON.stringify(port)}`);
  }
  let url: URL;
  try {
    url = new URL(given ?? `http://localhost:${port}${MERCURE_PATH}`);
  } catch {
    throw wrong(`--url must be the hub's URL, such as http://localhost:8080${MERCURE_PATH}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw wrong(`--url must be an http: or https: URL, got ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") {
    throw wrong("--url must not hold a user or password: give a token (--token, --jwt-key)");
  }
  return url;
}

// A wrong value: its reason alone (it names the setting), not the usage after it.
function wrong(message: string): CrierError {
  return new CrierError("CRIER_ERR_INVALID_OPTION", message);
}

function keyOf(values: { "jwt-key"?: string | undefined }): string | undefined {
  const key = values["jwt-key"] ?? process.env.CRIER_JWT_KEY;
  return key === undefined || key === "" ? undefined : readKey(key, "--jwt-key");
}

async function clientToken(
  values: { token?: string | undefined; "jwt-key"?: string | undefined },
  grant: { publish?: string[]; subscribe?: string[] },
): Promise<string> {
  if (values.token !== undefined) return values.token;
  const key = keyOf(values);
  if (key === undefined)
    throw new UsageError("give --token, or --jwt-key (or CRIER_JWT_KEY) to sign one");
  return mintToken(key, { ...grant, ttlSeconds: DEFAULT_TTL_SECONDS });
}
