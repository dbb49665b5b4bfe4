/**
 * Noticing a peer that vanished without a word (cable pulled, NAT entry dropped, laptop closed):
 * no FIN, no RST, so node:http never hears of it. Keep-alive comments keep data in flight, and
 * TCP then retransmits it for about 15 minutes (`tcp_retries2`) before giving up; the subscriber
 * holds its socket, a place under the subscriber cap, and grows by each keep-alive meanwhile.
 *
 * `TCP_USER_TIMEOUT` (RFC 5482) bounds how long sent data may stay unacknowledged: the kernel
 * then ends the connection (`ETIMEDOUT`), and the subscription ends as `stalled`. Linux applies
 * the same bound to a peer whose receive window stays closed (zero-window probes): a client
 * that stopped reading for that long is dropped too, and resumes from the history like any
 * other. Both are what the hub's own stalled check (four keep-alive intervals backed up) does
 * for transports the kernel does not see, only sooner. Node has no API for the option: it is set through the `net-keepalive` package, an
 * optional dependency loaded on first use; without it (or off Linux) only TCP keep-alive probes
 * are armed, which cover idle connections but not the in-flight case above.
 */
import { createRequire } from "node:module";
import type { Socket } from "node:net";

interface NetKeepAlive {
  setUserTimeout(socket: Socket, msecs: number): boolean;
}

let netKeepAlive: NetKeepAlive | null | undefined;
function loadNetKeepAlive(): NetKeepAlive | undefined {
  if (netKeepAlive === undefined) {
    try {
      netKeepAlive = createRequire(import.meta.url)("net-keepalive") as NetKeepAlive;
    } catch {
      netKeepAlive = null;
    }
  }
  return netKeepAlive ?? undefined;
}

/** How long a connection may leave data unacknowledged when keep-alives are off. */
const DEFAULT_DEAD_PEER_MS = 30_000;

/**
 * The unacknowledged-data bound for a hub sending keep-alives every `keepAliveMs`: two
 * intervals, so a peer that vanished is reaped within about three (one to send, two to wait).
 */
export function deadPeerTimeout(keepAliveMs: number): number {
  return keepAliveMs > 0 ? Math.max(2 * keepAliveMs, 1000) : DEFAULT_DEAD_PEER_MS;
}

/**
 * Arms the socket of an event stream so a vanished peer is noticed: TCP keep-alive probes, and
 * `TCP_USER_TIMEOUT` where it can be set. Returns whether the latter was set.
 */
export function armDeadPeerDetection(socket: Socket, keepAliveMs: number): boolean {
  const timeout = deadPeerTimeout(keepAliveMs);
  socket.setKeepAlive(true, timeout);
  const lib = loadNetKeepAlive();
  if (lib === undefined) return false;
  try {
    return lib.setUserTimeout(socket, timeout);
  } catch {
    // Not a TCP socket (a Unix socket in tests), no file descriptor yet, or not Linux.
    return false;
  }
}
