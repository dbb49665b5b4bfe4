/**
 * Bounded-memory accounting for a load run: a latency histogram and a per-subscriber delivery
 * ledger. Both are flat typed arrays sized once, so recording a delivery allocates nothing and
 * 10,000 subscribers × thousands of events cost the same memory as 10. Also the two facts read
 * about the server process from /proc: resident memory and CPU time.
 */
import { readFileSync } from "node:fs";

/** Sub-buckets per power of two: every value is kept to within 1/32 (about 3%). */
const SUB = 32;
/** Enough buckets for values up to 2^31 µs (about 35 minutes). */
const BUCKETS = (31 - 5) * SUB + 2 * SUB;

// Called twice per delivered event, up to millions of times a second: integer shifts only
// (`2 ** n` with a variable exponent is a call to Math.pow, which made this a fifth of the
// generator's time). `v` < 2^31, so `>>>` is exact.
function bucketOf(v: number): number {
  if (v < 2 * SUB) return v;
  const shift = 26 - Math.clz32(v); // log2(v) - 5: keeps the top 6 bits
  return shift * SUB + (v >>> shift);
}

function lowerBoundOf(i: number): number {
  if (i < 2 * SUB) return i;
  const e = Math.floor(i / SUB) + 4;
  return ((i % SUB) + SUB) * 2 ** (e - 5);
}

/** Percentiles of a latency distribution, in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Log-linear histogram of microsecond values (the HdrHistogram idea, fixed at 1/32 precision).
 * A reservoir would lose the tail; a list of samples would not fit at 10k subscribers.
 */
export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #max = 0;

  /** Records one value in microseconds; negatives (clock skew) count as 0. */
  record(us: number): void {
    const v = us <= 0 ? 0 : us >= 0x7fffffff ? 0x7fffffff : Math.floor(us);
    const i = bucketOf(v);
    this.#counts[i] = (this.#counts[i] ?? 0) + 1;
    this.#count++;
    if (v > this.#max) this.#max = v;
  }

  /** The value (µs) at or below which a fraction `q` of the records fall; 0 when empty. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil(q * this.#count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i] ?? 0;
      // Report the bucket's upper edge (capped at the true max): a conservative percentile.
      if (seen >= rank) return Math.min(lowerBoundOf(i + 1), this.#max);
    }
    return this.#max;
  }

  /** Adds `other`'s records to this one. */
  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++)
      this.#counts[i] = (this.#counts[i] ?? 0) + (other.#counts[i] ?? 0);
    this.#count += other.#count;
    if (other.#max > this.#max) this.#max = other.#max;
  }

  /** p50, p99 and max in milliseconds, rounded to 0.01 ms. */
  summary(): LatencySummary {
    const ms = (us: number): number => Math.round(us / 10) / 100;
    return {
      count: this.#count,
      p50: ms(this.quantile(0.5)),
      p99: ms(this.quantile(0.99)),
      max: ms(this.#max),
    };
  }
}

/** Delivery counters at one instant; phases report the difference of two snapshots. */
export interface LedgerSnapshot {
  received: number;
  duplicates: number;
  reordered: number;
}

/**
 * Verifies every delivery against the publisher's numbering. Events are published on `lanes`
 * keep-alive connections; lane l sends seq l, l+K, l+2K… one request at a time, so a correct hub
 * must deliver each lane's events in increasing order (request n+1 leaves only after the hub
 * answered n). Across lanes the hub may order freely, so order is only checked within a lane.
 */
export class DeliveryLedger {
  /** Last seq seen per (subscriber, lane), initialised to lane − K so the first expected is lane. */
  readonly #last: Float64Array;
  /** Events received per subscriber (including duplicates). */
  readonly received: Uint32Array;
  readonly #lanes: number;
  total = 0;
  duplicates = 0;
  reordered = 0;

  constructor(subscribers: number, lanes: number) {
    this.#lanes = lanes;
    this.#last = new Float64Array(subscribers * lanes);
    for (let i = 0; i < this.#last.length; i++) this.#last[i] = (i % lanes) - lanes;
    this.received = new Uint32Array(subscribers);
  }

  /** Records that subscriber `sub` received event `seq`. */
  record(sub: number, seq: number): void {
    const slot = sub * this.#lanes + (seq % this.#lanes);
    const last = this.#last[slot] ?? 0;
    // A gap (seq > last + K) is not counted here: it may be a failed publish, and loss is
    // computed from counts at the end of a phase (expected − distinct received).
    if (seq > last) this.#last[slot] = seq;
    else if (seq === last) this.duplicates++;
    else this.reordered++;
    this.received[sub] = (this.received[sub] ?? 0) + 1;
    this.total++;
  }

  /** Current counters, for diffing across a phase. */
  snapshot(): LedgerSnapshot {
    return { received: this.total, duplicates: this.duplicates, reordered: this.reordered };
  }

  /** How many subscribers received fewer than `expectedEach` distinct events since `before`. */
  shortSubscribers(expectedEach: number, before: Uint32Array, alive: (sub: number) => boolean) {
    let short = 0;
    for (let s = 0; s < this.received.length; s++) {
      if (!alive(s)) continue;
      if ((this.received[s] ?? 0) - (before[s] ?? 0) < expectedEach) short++;
    }
    return short;
  }
}

/** Reads VmRSS (KiB) of `pid` from /proc; 0 if unavailable. */
export function rssKB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m?.[1] ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU time (user+system, ms) used so far by `pid`, from /proc (100 ticks/s); 0 if unknown. */
export function cpuMsOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/** Jiffies of one core: busy (softirq included), of which irq+softirq, and total. */
type CoreTicks = [busy: number, irq: number, total: number];

/** Per-core jiffies from /proc/stat, for telling our load from everyone else's. */
export function coreTicks(): CoreTicks[] {
  try {
    return readFileSync("/proc/stat", "latin1")
      .split("\n")
      .filter((l) => /^cpu\d/.test(l))
      .map((l) => {
        const f = l.trim().split(/\s+/).slice(1, 9).map(Number);
        const total = f.reduce((a, b) => a + b, 0);
        return [total - (f[3] ?? 0) - (f[4] ?? 0), (f[5] ?? 0) + (f[6] ?? 0), total];
      });
  } catch {
    return [];
  }
}

/** Busy % of each core between a {@link coreTicks} reading and now. */
export function coreBusyPct(before: CoreTicks[]): number[] {
  return coreShares(before).map(([busy]) => Math.round(busy));
}

/** Per-core [busy %, irq+softirq %] between a {@link coreTicks} reading and now. */
function coreShares(before: CoreTicks[]): Array<[number, number]> {
  return coreTicks().map(([busy, irq, total], i) => {
    const [b0, i0, t0] = before[i] ?? [0, 0, 0];
    const span = Math.max(1, total - t0);
    return [((busy - b0) / span) * 100, ((irq - i0) / span) * 100];
  });
}

/** CPU use over an interval: this process (the generator), the server, and each core. */
export interface CpuShare {
  /** Wall time of the interval, ms. */
  ms: number;
  /** This process's user+system CPU as % of one core; ~100 means the generator was saturated. */
  generatorCpuPct: number;
  /** The server's CPU as % of one core (0 when its pid is unknown). */
  serverCpuPct: number;
  /** CPU (% of one core) of each other process of the server side (a second node, Redis). */
  peerCpuPct?: Record<string, number>;
  /** Busy % of each core, softirq included. */
  coreBusyPct: number[];
  /**
   * CPU (% of one core) used by neither the server (peers included) nor the generator nor
   * interrupts: someone else's load on this shared machine. Above {@link DISTURBED_PCT} the
   * interval was disturbed.
   */
  foreignCpuPct: number;
}

/** Foreign CPU above which a run counts as disturbed and is left out of medians if it can be. */
export const DISTURBED_PCT = 15;

/**
 * Starts measuring; call the returned function to read the interval's {@link CpuShare}.
 * `peerPids` names the other processes of the server side, whose CPU is not foreign.
 */
export function startMeter(
  serverPid: number | undefined,
  peerPids: Record<string, number> = {},
): () => CpuShare {
  const [w0, cpu0, s0, ticks0] = [
    performance.now(),
    process.cpuUsage(),
    cpuMsOf(serverPid),
    coreTicks(),
  ];
  const peers = Object.entries(peerPids).map(([name, pid]) => [name, pid, cpuMsOf(pid)] as const);
  return () => {
    const ms = Math.max(1, performance.now() - w0);
    const own = process.cpuUsage(cpu0);
    const generatorCpuPct = Math.round((own.user + own.system) / 10 / ms);
    const serverCpuPct = Math.round(((cpuMsOf(serverPid) - s0) / ms) * 100);
    const peerCpuPct = Object.fromEntries(
      peers.map(([name, pid, c0]) => [name, Math.round(((cpuMsOf(pid) - c0) / ms) * 100)]),
    );
    const peerSum = Object.values(peerCpuPct).reduce((t, v) => t + v, 0);
    const cores = coreShares(ticks0);
    const processes = cores.reduce((t, [busy, irq]) => t + busy - irq, 0);
    const share: CpuShare = {
      ms: Math.round(ms),
      generatorCpuPct,
      serverCpuPct,
      coreBusyPct: cores.map(([busy]) => Math.round(busy)),
      foreignCpuPct: Math.max(0, Math.round(processes - generatorCpuPct - serverCpuPct - peerSum)),
    };
    if (peers.length > 0) share.peerCpuPct = peerCpuPct;
    return share;
  };
}
