// Real traffic between lab namespaces: TCP and UDP listeners and probes that
// say whether a connection connects, is refused, or times out; ICMP echo with
// ping. Each probe is a short process inside the source namespace.
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { sourcePath, waitFor } from './exec.js';
import type { LabProcess, Netns } from './lab.js';

const HELPER = sourcePath('./probe-helper.mjs', import.meta.url);

export type Transport = 'tcp' | 'udp';
export type ProbeResult = 'connected' | 'refused' | 'timeout' | 'error';

export interface Listener {
  readonly process: LabProcess;
  stop(): Promise<void>;
}

/** Starts a TCP (accepts) or UDP (echoes) listener on addr:port in `ns`; resolves when it listens. */
export async function listen(ns: Netns, transport: Transport, addr: string, port: number): Promise<Listener> {
  const proc = ns.spawn(`listen-${transport}-${port}`, [process.execPath, HELPER, 'listen', transport, addr, String(port)]);
  const stdout = proc.child.stdout;
  if (!stdout) throw new Error('listener has no stdout');
  const ready = new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: stdout });
    rl.once('line', () => resolve());
    void proc.exited.then((code) => reject(new Error(`listener on ${addr}:${port} in ${ns.name} exited (${code})`)));
  });
  await ready;
  return { process: proc, stop: () => proc.stop() };
}

/** Connects from `from` to addr:port and reports how it went within timeoutMs. */
export async function probe(
  from: Netns,
  transport: Transport,
  addr: string,
  port: number,
  options: { timeoutMs?: number; source?: string } = {},
): Promise<ProbeResult> {
  const timeoutMs = options.timeoutMs ?? 1000;
  const argv = [process.execPath, HELPER, 'connect', transport, addr, String(port), String(timeoutMs)];
  if (options.source) argv.push(options.source);
  const { stdout } = await from.exec(argv, { timeoutMs: timeoutMs + 10_000 });
  const line = stdout.trim().split('\n').pop() ?? '{}';
  return (JSON.parse(line) as { result: ProbeResult }).result;
}

/** One ICMP (or ICMPv6) echo from `from` to addr: true when a reply came within timeoutMs. */
export async function ping(from: Netns, addr: string, options: { timeoutMs?: number } = {}): Promise<boolean> {
  const seconds = Math.max(1, Math.ceil((options.timeoutMs ?? 1000) / 1000));
  const r = await from.exec(['ping', '-n', '-q', '-c', '1', '-W', String(seconds), addr], { allowFail: true });
  return r.code === 0;
}

/** Waits until a probe gives `expected`, e.g. after a policy change; returns how long it took. */
export async function waitForProbe(
  from: Netns, transport: Transport, addr: string, port: number, expected: ProbeResult, timeoutMs = 5000, probeTimeoutMs = 300,
): Promise<number> {
  const started = Date.now();
  await waitFor(`${transport} ${addr}:${port} from ${from.name} to be ${expected}`, async () =>
    (await probe(from, transport, addr, port, { timeoutMs: probeTimeoutMs })) === expected ? true : undefined,
  { timeoutMs, intervalMs: 50 });
  return Date.now() - started;
}


/** A TCP port on 127.0.0.1 that was free a moment ago (for servers a test starts by port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export interface ProbeLoop {
  /** Every probe whose result differed from the expected one, with when. */
  readonly flips: string[];
  rounds(): number;
  stop(): Promise<void>;
}

/**
 * Probes in rounds until stopped (each round runs every check once, in
 * parallel); for "nothing flipped while X happened" assertions.
 */
export function probeLoop(
  checks: readonly { from: Netns; addr: string; port: number; want: ProbeResult; source?: string }[],
  /** Called once, at the first flip (while it lasts: for a test to look at the state then). */
  onFirstFlip?: () => void,
): ProbeLoop {
  const flips: string[] = [];
  let rounds = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      await Promise.all(checks.map(async (c) => {
        const got = await probe(c.from, 'tcp', c.addr, c.port, { timeoutMs: 500, ...(c.source ? { source: c.source } : {}) });
        if (got !== c.want) {
          if (flips.length === 0) onFirstFlip?.();
          flips.push(`${new Date().toISOString()} ${c.from.short} -> ${c.addr}:${c.port} ${got}, expected ${c.want}`);
        }
      }));
      rounds++;
    }
  })();
  return { flips, rounds: () => rounds, stop: async () => { running = false; await done; } };
}

/** A TCP echo server on addr:port in `ns` (every line back on every connection); resolves when it listens. */
export async function echoServer(ns: Netns, addr: string, port: number): Promise<Listener> {
  const proc = ns.spawn(`echo-tcp-${port}`, [process.execPath, HELPER, 'echo', 'tcp', addr, String(port)]);
  const stdout = proc.child.stdout;
  if (!stdout) throw new Error('echo server has no stdout');
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: stdout }).once('line', () => resolve());
    void proc.exited.then((code) => reject(new Error(`echo server on ${addr}:${port} in ${ns.name} exited (${code})`)));
  });
  return { process: proc, stop: () => proc.stop() };
}

export interface FlowStream {
  /** Every round so far: whether its echo came back before the next round. */
  readonly rounds: boolean[];
  /** Whether the flow died at or after round `from` (an index into rounds): every round since has failed, three at least. */
  deadSince(from: number): boolean;
  stop(): Promise<void>;
}

/**
 * One long-lived flow (a TCP connection, or one UDP 5-tuple) from `from` to
 * addr:port sending a line every intervalMs to an echo server: for
 * "an open flow keeps working" and "the flow was cut" assertions.
 */
export function flowStream(from: Netns, transport: Transport, addr: string, port: number, intervalMs = 100): FlowStream {
  const proc = from.spawn(`stream-${transport}-${port}`, [process.execPath, HELPER, 'stream', transport, addr, String(port), String(intervalMs)]);
  const rounds: boolean[] = [];
  const stdout = proc.child.stdout;
  if (stdout) createInterface({ input: stdout }).on('line', (l) => { rounds.push((JSON.parse(l) as { ok: boolean }).ok); });
  return {
    rounds,
    deadSince: (from) => {
      const firstDead = rounds.lastIndexOf(true) + 1;
      return firstDead >= from && rounds.length - firstDead >= 3;
    },
    stop: () => proc.stop(),
  };
}

export interface OutageMeter {
  /** The longest run of failed probes so far, in ms (0: none failed). */
  worst(): number;
  /** Failed probes so far. */
  failures(): number;
  stop(): Promise<void>;
}

/**
 * Probes addr:port over TCP every 100 ms (300 ms timeout) until stopped and
 * measures outages: from the first failed probe to the next that connects.
 */
export function outageMeter(from: Netns, addr: string, port: number): OutageMeter {
  let running = true;
  let worst = 0;
  let failures = 0;
  let downSince: number | undefined;
  const done = (async () => {
    while (running) {
      const at = Date.now();
      const ok = (await probe(from, 'tcp', addr, port, { timeoutMs: 300 })) === 'connected';
      if (!ok) {
        failures++;
        downSince ??= at;
      } else if (downSince !== undefined) {
        worst = Math.max(worst, at - downSince);
        downSince = undefined;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - at))));
    }
  })();
  return {
    worst: () => Math.max(worst, downSince === undefined ? 0 : Date.now() - downSince),
    failures: () => failures,
    stop: async () => { running = false; await done; },
  };
}
