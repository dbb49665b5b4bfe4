/**
 * What every Mercure route needs: the handler's options, checked and resolved once into an
 * {@link HttpContext}. The handlers import this module, never the router.
 */

import type { JSONWebKeySet } from "jose";
import type { NodeRequest, NodeResponse } from "../../adapters/node.ts";
import { CrierError } from "../../errors.ts";
import type { Hub } from "../../hub.ts";
import { Dashboard, type DashboardOptions } from "../../ops/dashboard.ts";
import {
  booleanOption,
  durationOption,
  functionOption,
  hubArgument,
  integerOption,
  objectArgument,
  stringListOption,
} from "../../options.ts";
import { type ActiveSubscriptions, activeSubscriptionsOf } from "../active.ts";
import { Authenticator, type KeySource } from "../tokens/verify.ts";
import { Admission } from "./admission.ts";
import { type MetadataLocation, metadataLocation } from "./metadata.ts";
import { checkCorsOrigins, isOrigin } from "./origin.ts";

/** Defaults of {@link HandlerOptions}. */
export const HANDLER_DEFAULTS = {
  maxBodyBytes: 1024 * 1024,
  maxTopics: 100,
  maxSubscribers: 100_000,
  maxSubscribersPerIp: 0,
  maxSubscribeRate: 10_000,
  maxConnectionLifetimeMs: 3_600_000,
} as const;
const D = HANDLER_DEFAULTS;

/** Options of {@link createHandler}. */
export interface HandlerOptions {
  /** The hub that serves the requests. */
  readonly hub: Hub;
  /** Key for publishers' JWTs (HMAC secret or PEM public key). Without it, publishing is refused. */
  readonly publisherKey?: KeySource | undefined;
  /** Key for subscribers' JWTs. Without it, subscriber tokens are refused. */
  readonly subscriberKey?: KeySource | undefined;
  /**
   * Public keys (a JWK Set) for the tokens of any role without its own key; a token picks its
   * key by `kid`. Default none.
   */
  readonly jwks?: JSONWebKeySet | undefined;
  /** Trusted issuer of `at+jwt` access tokens (`iss`). Default: not checked (self-issued tokens). */
  readonly jwtIssuer?: string | undefined;
  /**
   * The hub's resource identifier, required in the `aud` of `at+jwt` access tokens. Without it,
   * access tokens are refused; v0.x tokens (the `mercure` claim) are accepted either way.
   */
  readonly jwtAudience?: string | undefined;
  /**
   * Accept the token in the `authorization` (v0.x) or `access_token` query parameter. URLs end
   * up in logs and browser history, so it is off by default: such a request is answered 400.
   */
  readonly authorizationQuery?: boolean | undefined;
  /** Most concurrent subscriptions; past it a subscribe is answered 429 with Retry-After. Default 100,000. */
  readonly maxSubscribers?: number | undefined;
  /**
   * Most concurrent subscriptions from one client address (IPv6: one /64); past it a subscribe
   * is answered 429 with Retry-After. Default 0: off, because behind a reverse proxy every
   * client has the proxy's address (limit per client at the proxy then), and many clients share
   * one address behind NAT. Set it when clients connect to the hub directly.
   */
  readonly maxSubscribersPerIp?: number | undefined;
  /**
   * Most new subscriptions admitted per second by this handler (a token bucket holding one
   * second's worth); past it a subscribe is answered 503 with `Retry-After: 1`. It spreads a
   * reconnect storm (every client of a restarted node at once) over time. Default 10,000, above
   * what one process accepts (about 7,500 per second in BENCHMARKS.md), so it bites only when
   * lowered; 0 turns it off.
   */
  readonly maxSubscribeRate?: number | undefined;
  /**
   * Longest an event stream stays open, in ms: then it ends (reason `expired`) and the client
   * reconnects with its `Last-Event-ID`, presenting its token again, so a revoked or narrowed
   * grant takes effect (draft-08: `exp` alone cannot revoke a long-lived connection). Each
   * stream's bound is drawn between 90 % and 100 % of it, so that streams opened together do
   * not all end together, and is checked at each keep-alive (so it may end up to one keep-alive
   * interval later; no timer per stream). Default 1 hour; 0 turns it off (a token's `exp` still
   * ends a stream, to the millisecond).
   */
  readonly maxConnectionLifetimeMs?: number | undefined;
  /** Allow subscribers without a token (they never receive private updates). Default false. */
  readonly anonymous?: boolean | undefined;
  /** Accept an HMAC secret shorter than 32 bytes (tests, demos). Default false: it is refused. */
  readonly allowWeakKey?: boolean | undefined;
  /** Largest publish body, in bytes. Default 1 MiB. */
  readonly maxBodyBytes?: number | undefined;
  /** Most topics in one publish or one subscription. Default 100. */
  readonly maxTopics?: number | undefined;
  /** Origins allowed to call the hub from a browser (`*`: any, without credentials). Default none. */
  readonly corsOrigins?: readonly string[] | undefined;
  /**
   * The hub's public origin, `scheme://host[:port]` (e.g. `https://hub.example.com`): the base
   * of relative topics and relative URL patterns (in subscriptions and in tokens' grants), and
   * the origin a publish authenticated by cookie may come from. Default: read from each request,
   * its `Host` header and whether its connection is TLS — which the client chooses (a relative
   * grant then covers that path on any host the client names), and which says `http` behind a
   * proxy that terminates TLS. Set it when grants or topics are relative, or behind such a proxy.
   */
  readonly publicOrigin?: string | undefined;
  /**
   * Mercure active subscriptions: publish a private subscription event on
   * `/.well-known/mercure/subscriptions/…` whenever a subscription starts or ends, and serve the
   * subscriptions web API. Each event takes a place in the history like any update. Default false.
   */
  readonly subscriptions?: boolean | undefined;
  /**
   * Answers `/readyz`: 200 while it returns true, 503 otherwise. Default: ready until the hub
   * starts closing. `new Readiness(hub, backplane).ready` from `crier-hub/metrics` also watches the
   * backplane.
   */
  readonly ready?: (() => boolean) | undefined;
  /**
   * Serve the live dashboard: its page at `/` (instead of the home page) and its figures at
   * `/dashboard.json`, for tokens with the `admin` right. `true` or options (the backplane to
   * report, dev mode's `open`). Default false: the figures name topics.
   */
  readonly dashboard?: boolean | DashboardOptions | undefined;
  /** More `GET` routes, by exact path (e.g. `/metrics`). Default none. */
  readonly routes?: Readonly<Record<string, RouteListener>> | undefined;
}

/** A listener of an extra route. */
export type RouteListener = (req: NodeRequest, res: NodeResponse) => void;

/** What every route needs, resolved once. */
export interface HttpContext {
  readonly hub: Hub;
  readonly auth: Authenticator;
  readonly anonymous: boolean;
  readonly maxBodyBytes: number;
  readonly maxTopics: number;
  readonly corsOrigins: readonly string[];
  /** The configured public origin; undefined: each request's own. */
  readonly publicOrigin: string | undefined;
  readonly authorizationQuery: boolean;
  /** Longest an event stream stays open, in ms; 0: no bound. */
  readonly maxConnectionLifetimeMs: number;
  /** The subscription limits: total, per client address, per second. */
  readonly admission: Admission;
  /** The active subscriptions registry, when the handler serves them. */
  readonly subscriptions: ActiveSubscriptions | undefined;
  /** The hub's resource identifier (`aud` of access tokens), if configured. */
  readonly audience: string | undefined;
  /** The trusted issuer of access tokens, if configured. */
  readonly issuer: string | undefined;
  /** Where the protected resource metadata is served, when the hub has a resource identifier. */
  readonly metadata: MetadataLocation | undefined;
  readonly ready: () => boolean;
  /** The dashboard's figures, when it is on. */
  readonly dashboard: Dashboard | undefined;
  readonly routes: Readonly<Record<string, RouteListener>>;
}

/**
 * Checks the options and resolves their defaults; throws `CRIER_ERR_INVALID_OPTION` naming the
 * option for any of the wrong type (plain JavaScript callers), before anything is served.
 */
export function resolveContext(options: HandlerOptions): HttpContext {
  objectArgument(
    options,
    "the Mercure handler needs options: { hub, publisherKey?, subscriberKey?, … }",
  );
  hubArgument(options.hub, "the Mercure handler's hub option");
  const routes = options.routes ?? {};
  objectArgument(routes, "routes must map paths to listeners (req, res) => void");
  for (const [path, listener] of Object.entries(routes)) {
    functionOption(`routes["${path}"]`, listener);
  }
  return {
    hub: options.hub,
    auth: new Authenticator({
      publisherKey: options.publisherKey,
      subscriberKey: options.subscriberKey,
      jwks: options.jwks,
      issuer: options.jwtIssuer,
      audience: options.jwtAudience,
      allowWeakKey: options.allowWeakKey,
    }),
    anonymous: booleanOption("anonymous", options.anonymous, false),
    maxBodyBytes: integerOption("maxBodyBytes", options.maxBodyBytes, D.maxBodyBytes, 1),
    maxTopics: integerOption("maxTopics", options.maxTopics, D.maxTopics, 1),
    corsOrigins: corsOriginsOption(options.corsOrigins),
    publicOrigin: publicOriginOption(options.publicOrigin),
    authorizationQuery: booleanOption("authorizationQuery", options.authorizationQuery, false),
    maxConnectionLifetimeMs: durationOption(
      "maxConnectionLifetimeMs",
      options.maxConnectionLifetimeMs,
      D.maxConnectionLifetimeMs,
    ),
    admission: new Admission(options.hub, {
      maxSubscribers: integerOption("maxSubscribers", options.maxSubscribers, D.maxSubscribers, 1),
      maxSubscribersPerIp: integerOption(
        "maxSubscribersPerIp",
        options.maxSubscribersPerIp,
        D.maxSubscribersPerIp,
      ),
      maxSubscribeRate: integerOption(
        "maxSubscribeRate",
        options.maxSubscribeRate,
        D.maxSubscribeRate,
      ),
    }),
    subscriptions: booleanOption("subscriptions", options.subscriptions, false)
      ? activeSubscriptionsOf(options.hub)
      : undefined,
    audience: options.jwtAudience,
    issuer: options.jwtIssuer,
    metadata: metadataLocation(options.jwtAudience),
    ready: functionOption<() => boolean>("ready", options.ready) ?? (() => !options.hub.closing),
    dashboard: dashboardOf(options),
    routes,
  };
}

function dashboardOf(options: HandlerOptions): Dashboard | undefined {
  const { dashboard } = options;
  if (dashboard === undefined || dashboard === false) return undefined;
  return new Dashboard(options.hub, dashboard === true ? {} : dashboard);
}

function corsOriginsOption(value: unknown): readonly string[] {
  const origins = stringListOption("corsOrigins", value) ?? [];
  checkCorsOrigins(origins, "corsOrigins");
  return origins;
}

function publicOriginOption(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !isOrigin(value)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `publicOrigin must be an origin such as https://hub.example.com (scheme://host[:port], http or https, lower case, no path or default port), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
