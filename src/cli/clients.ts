/**
 * `crier publish`, `crier subscribe` and `crier token`: small clients of a running hub, signing
 * their own tokens with `--jwt-key` / `CRIER_JWT_KEY` when no `--token` is given.
 */
import { parseArgs } from "node:util";
import { createParser } from "eventsource-parser";
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
  Prints a token signed with --jwt-key or CRIER_JWT_KEY. --admin grants the dashboard's figures.
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
  const res = await request(new URL(values.url ?? defaultUrl()), {
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
  const url = new URL(values.url ?? defaultUrl());
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
  if (!/^\d+$/.test(ttl)) throw new UsageError("--ttl must be whole seconds (0: never expires)");
  const ttlSeconds = Number(ttl);
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
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new Error(`cannot reach the hub at ${url.origin}${url.pathname}: ${why}`, { cause: err });
  }
}

function defaultUrl(): string {
  return `http://localhost:${process.env.CRIER_PORT ?? "8080"}${MERCURE_PATH}`;
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
