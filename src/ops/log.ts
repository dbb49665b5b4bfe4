/**
 * The standalone hub's log: pino, one JSON object per line on stdout (or a compact human line),
 * fed by the hub's events, the Mercure routes' diagnostics channels and the backplane's facts.
 * Nothing here runs per event unless the level asks for it (`debug`), and no line ever holds a
 * token, a cookie or a query string: requests are logged by route, status and address only.
 */
import diagnostics from "node:diagnostics_channel";
import { type DestinationStream, type Logger, pino } from "pino";
import type { Hub } from "../hub.ts";
import {
  PUBLISH_CHANNEL,
  type PublishMessage,
  REFUSED_CHANNEL,
  type RefusedMessage,
} from "../mercure/http/channels.ts";
import type { Subscription } from "../subscriber.ts";
import type { LogFormat, LogLevel } from "./levels.ts";

/** A pino logger writing to `out` (default stdout) as JSON lines or compact human lines. */
export function createLogger(
  level: LogLevel,
  format: LogFormat,
  out: NodeJS.WritableStream = process.stdout,
): Logger {
  const destination: DestinationStream =
    format === "json"
      ? { write: (line) => out.write(line) }
      : { write: (line) => out.write(pretty(line)) };
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    destination,
  );
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};

// `2026-12-01T14:00:00.000Z INFO  message key=value …`: enough for a terminal, no dependency.
// One entry is one line: a value with a control character (a client's bad parameter quoted in a
// refusal's reason) is written as a JSON string, so that it cannot start a forged line.
export function pretty(line: string): string {
  const { time, level, msg, pid: _pid, ...fields } = JSON.parse(line) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === "string" && !CONTROL.test(v) ? v : quoted(v));
  const rest = Object.entries(fields)
    .map(([k, v]) => `${k}=${text(v)}`)
    .join(" ");
  const name = (LEVEL_NAMES[level as number] ?? String(level)).padEnd(5);
  return `${String(time)} ${name} ${text(String(msg ?? ""))}${rest === "" ? "" : ` ${rest}`}\n`;
}

// A value as a JSON string with every control in `CONTROL` escaped: JSON.stringify escapes
// only C0, so DEL, C1 (NEL, CSI) and the line and paragraph separators are escaped here.
function quoted(v: unknown): string {
  return String(JSON.stringify(v)).replace(
    NOT_C0,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
const NOT_C0 = /[\u007f-\u009f\u2028\u2029]/g;

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point: they are quoted.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

// Refusals worth an operator's attention at info; other 4xx at debug, 5xx at warn.
const NOTABLE = new Set([401, 403, 413, 429]);

/** Logs what the hub and its routes report; returns a function that stops it. */
export function logHub(logger: Logger, hub: Hub): () => void {
  const onRefused = (message: unknown) => {
    const { route, status, code, reason, address } = message as RefusedMessage;
    const fields = { route, status, code, reason, address };
    if (status >= 500) logger.warn(fields, "request failed");
    else if (NOTABLE.has(status)) logger.info(fields, "request refused");
    else logger.debug(fields, "request refused");
  };
  diagnostics.subscribe(REFUSED_CHANNEL, onRefused);
  const stops: (() => unknown)[] = [() => diagnostics.unsubscribe(REFUSED_CHANNEL, onRefused)];
  const onError = (err: Error) => logger.error({ err: err.message }, "hub error");
  hub.on("error", onError);
  stops.push(() => hub.off("error", onError));
  if (logger.isLevelEnabled("debug")) {
    const since = new WeakMap<Subscription, number>();
    const onConnect = (s: Subscription) => {
      since.set(s, Date.now());
      logger.debug({ subscription: s.id, topics: s.topics.length }, "subscriber connected");
    };
    const onDisconnect = (s: Subscription, reason: string) => {
      const started = since.get(s);
      const durationMs = started === undefined ? undefined : Date.now() - started;
      logger.debug({ subscription: s.id, reason, durationMs }, "subscriber disconnected");
    };
    const onPublish = (message: unknown) => {
      const { status, id, topics } = message as PublishMessage;
      if (status === 200) logger.debug({ id, topics }, "published");
    };
    hub.on("connect", onConnect);
    hub.on("disconnect", onDisconnect);
    diagnostics.subscribe(PUBLISH_CHANNEL, onPublish);
    stops.push(() => {
      hub.off("connect", onConnect);
      hub.off("disconnect", onDisconnect);
      diagnostics.unsubscribe(PUBLISH_CHANNEL, onPublish);
    });
  }
  return () => {
    for (const stop of stops) stop();
  };
}
