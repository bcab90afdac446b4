// The netns lab: network namespaces, veth links, addresses, routes and the
// processes running in them, all named with one per-run prefix and removed
// by teardown() even when a test fails. sweep() removes what crashed runs
// left behind: every run records its owner pid, and a run whose owner is
// gone is fair game.
import { createHash, randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNetns, run, waitFor, type RunOptions, type RunResult } from './exec.js';

/** Where run directories live; each holds owner.json and the run's files. */
export const DEFAULT_BASE_DIR = join(tmpdir(), 'hostnet-lab');

export interface LabOptions {
  /**
   * One lower-case letter distinguishing users of the lab: "t" for tests
   * (the default), "l" for `npm run lab`. Sweeps only touch their own kind.
   */
  readonly kind?: string;
  readonly baseDir?: string;
  /** A fixed run id instead of a random one (the long-lived lab uses "main"). */
  readonly id?: string;
}

const namePattern = (kind: string): RegExp => new RegExp(`^hn${kind}([a-z0-9]{4})`);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface SpawnOptions {
  /** Give the process a stdin pipe (default: none). */
  readonly stdin?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** A process the lab started; stopped by teardown. */
export interface LabProcess {
  readonly child: ChildProcess;
  readonly name: string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  stop(): Promise<void>;
}

/** A network namespace of the lab. */
export class Netns {
  constructor(readonly lab: Lab, readonly name: string, readonly short: string) {}

  /** Runs argv inside the namespace. */
  exec(argv: readonly string[], options: Omit<RunOptions, 'netns'> = {}): Promise<RunResult> {
    return run(argv, { ...options, netns: this.name });
  }

  async addAddress(ifname: string, cidr: string): Promise<void> {
    await this.exec(['ip', 'address', 'add', cidr, 'dev', ifname]);
  }

  async delAddress(ifname: string, cidr: string): Promise<void> {
    await this.exec(['ip', 'address', 'del', cidr, 'dev', ifname]);
  }

  async up(ifname: string): Promise<void> {
    await this.exec(['ip', 'link', 'set', ifname, 'up']);
  }

  /** Takes a link down, e.g. to cut an uplink. */
  async down(ifname: string): Promise<void> {
    await this.exec(['ip', 'link', 'set', ifname, 'down']);
  }

  /** `ip route replace DEST ...rest`, e.g. route('10.0.0.0/8', ['via', '10.1.0.1']). */
  async route(dest: string, rest: readonly string[]): Promise<void> {
    const family = dest.includes(':') ? '-6' : '-4';
    await this.exec(['ip', family, 'route', 'replace', dest, ...rest]);
  }

  async delRoute(dest: string): Promise<void> {
    const family = dest.includes(':') ? '-6' : '-4';
    await this.exec(['ip', family, 'route', 'del', dest]);
  }

  /** The namespace's routes for `prefix` as `ip -j` objects (empty when none). */
  async routes(prefix: string): Promise<Record<string, unknown>[]> {
    const family = prefix.includes(':') ? '-6' : '-4';
    const { stdout } = await this.exec(['ip', '-j', family, 'route', 'show', 'exact', prefix]);
    return stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>[]) : [];
  }

  /** Starts a long-running process in the namespace; output goes to a log file in the run directory. */
  spawn(name: string, argv: readonly string[], options: SpawnOptions = {}): LabProcess {
    return this.lab.spawnProcess(`${this.short}-${name}`, inNetns(this.name, argv), options);
  }

  /** The IPv6 link-local address of an interface (waiting up to 5 s for the kernel to assign it). */
  async linkLocal(ifname: string): Promise<string> {
    return waitFor(`link-local address on ${ifname} in ${this.name}`, async () => {
      const { stdout } = await this.exec(['ip', '-j', '-6', 'address', 'show', 'dev', ifname, 'scope', 'link']);
      const [link] = JSON.parse(stdout) as { addr_info: { local?: string; scope?: string }[] }[];
      // iproute2 leaves empty entries for the addresses its filter skipped.
      return link?.addr_info.find((a) => a.scope === 'link' && a.local)?.local;
    }, { timeoutMs: 5000, intervalMs: 50 });
  }
}

/** A management network of a Lab (its bridge is in the root namespace). */
export interface ManagementNetwork {
  /** The root namespace's address on it (where the controller listens). */
  readonly gateway: string;
  readonly prefix: string;
  /** Joins `ns` to it as `ifname`; resolves with the address `ns` got. */
  attach(ns: Netns, ifname: string): Promise<string>;
}

export class Lab {
  private readonly namespaces: Netns[] = [];
  private readonly processes = new Set<LabProcess>();
  private linkCount = 0;
  private tornDown = false;

  private constructor(readonly prefix: string, readonly kind: string, readonly dir: string) {}

  /**
   * Creates a run: sweeps dead runs of the same kind, then makes the run
   * directory with owner.json. Throws if a live run holds the same id.
   */
  static async create(options: LabOptions = {}): Promise<Lab> {
    const kind = options.kind ?? 't';
    const baseDir = options.baseDir ?? DEFAULT_BASE_DIR;
    if (!/^[a-z]$/.test(kind)) throw new TypeError(`lab kind must be one lower-case letter, got "${kind}"`);
    await sweep({ kind, baseDir });
    const id = options.id ?? randomBytes(2).toString('hex');
    if (!/^[a-z0-9]{4}$/.test(id)) throw new TypeError(`lab id must be 4 characters of [a-z0-9], got "${id}"`);
    const prefix = `hn${kind}${id}`;
    const dir = join(baseDir, prefix);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await writeFile(join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, started: new Date().toISOString() }));
    return new Lab(prefix, kind, dir);
  }

  /** Creates namespace PREFIX-short with lo up, IPv6 on and forwarding on. */
  async netns(short: string): Promise<Netns> {
    const ns = new Netns(this, `${this.prefix}-${short}`, short);
    await run(['ip', 'netns', 'add', ns.name]);
    this.namespaces.push(ns);
    await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
    // No duplicate address detection: a lab link is usable the moment it is up.
    await ns.exec(['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0',
      'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1',
      'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    return ns;
  }

  /**
   * A veth pair between two namespaces, named aIf in a and bIf in b, both up.
   * The pair is created under prefixed names in the root namespace and then
   * moved, so a crash in between leaves only names the sweep recognises.
   */
  async link(a: Netns, aIf: string, b: Netns, bIf: string): Promise<void> {
    const n = this.linkCount++;
    const ta = `${this.prefix}v${n}a`;
    const tb = `${this.prefix}v${n}b`;
    await run(['ip', 'link', 'add', ta, 'type', 'veth', 'peer', 'name', tb]);
    await run(['ip', 'link', 'set', ta, 'netns', a.name, 'name', aIf]);
    await run(['ip', 'link', 'set', tb, 'netns', b.name, 'name', bIf]);
    await a.up(aIf);
    await b.up(bIf);
  }

  /**
   * A management network: a bridge in the root namespace (where a lab's
   * controller runs) holding the first address of a /24 of 100.64.0.0/10
   * picked from the run's prefix (two runs at once get different ones), which
   * namespaces join with a veth. Agents reach their controller over TCP on it,
   * as servers reach theirs over their management network.
   */
  async managementNetwork(): Promise<ManagementNetwork> {
    const h = createHash('sha256').update(this.prefix).digest();
    const net = `100.${64 + ((h[0] ?? 0) & 63)}.${h[1] ?? 0}`;
    const bridge = `${this.prefix}mg`;
    await run(['ip', 'link', 'add', bridge, 'type', 'bridge']);
    await run(['ip', 'address', 'add', `${net}.1/24`, 'dev', bridge]);
    await run(['ip', 'link', 'set', bridge, 'up']);
    let next = 10;
    return {
      gateway: `${net}.1`,
      prefix: `${net}.0/24`,
      attach: async (ns: Netns, ifname: string): Promise<string> => {
        const n = this.linkCount++;
        const outside = `${this.prefix}m${n}`;
        const inside = `${this.prefix}v${n}i`;
        await run(['ip', 'link', 'add', outside, 'type', 'veth', 'peer', 'name', inside]);
        await run(['ip', 'link', 'set', outside, 'master', bridge, 'up']);
        await run(['ip', 'link', 'set', inside, 'netns', ns.name, 'name', ifname]);
        await ns.up(ifname);
        const address = `${net}.${next++}`;
        await ns.addAddress(ifname, `${address}/24`);
        return address;
      },
    };
  }

  /** Starts argv (already wrapped for its namespace); tracked until teardown. */
  spawnProcess(name: string, argv: readonly string[], options: SpawnOptions = {}): LabProcess {
    const [cmd, ...args] = argv;
    if (!cmd) throw new TypeError('empty argv');
    const log = createWriteStream(join(this.dir, `${name}.log`), { flags: 'a' });
    const child = spawn(cmd, args, {
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      ...(options.env ? { env: options.env } : {}),
    });
    // Both streams into one file: neither may end it while the other still writes.
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.once('close', () => log.end());
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
      child.once('error', () => resolve(-1));
    });
    const proc: LabProcess = {
      child,
      name,
      exited,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          // Daemons get 6 s: the controller and agents promise to be gone within 5 s of SIGTERM (and tests check they are).
          const timer = setTimeout(() => child.kill('SIGKILL'), 6000);
          await exited;
          clearTimeout(timer);
        }
        this.processes.delete(proc);
      },
    };
    this.processes.add(proc);
    return proc;
  }

  /**
   * Stops every process, deletes every namespace (and with it the links in
   * it) and the run directory. Attempts everything, then throws the first
   * error, if any. Idempotent.
   */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    const errors: unknown[] = [];
    await Promise.all([...this.processes].map((p) => p.stop().catch((e: unknown) => errors.push(e))));
    for (const ns of this.namespaces.reverse()) {
      await removeNamespace(ns.name).catch((e: unknown) => errors.push(e));
    }
    await removeRootLinks(this.prefix).catch((e: unknown) => errors.push(e));
    await killByPath(this.dir).catch((e: unknown) => errors.push(e));
    await rm(this.dir, { recursive: true, force: true }).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw errors[0];
  }
}

/** Kills whatever still runs in the namespace, then deletes it. */
async function removeNamespace(name: string): Promise<void> {
  const { stdout } = await run(['ip', 'netns', 'pids', name], { allowFail: true });
  const pids = stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  for (let i = 0; i < 50 && pids.some(pidAlive); i++) await new Promise((r) => setTimeout(r, 20));
  await run(['ip', 'netns', 'delete', name], { allowFail: true });
  const left = await run(['ip', 'netns', 'list'], { allowFail: true });
  if (left.stdout.split('\n').some((l) => l.split(' ')[0] === name)) throw new Error(`namespace ${name} could not be deleted`);
}

/**
 * Kills processes whose command line names a file in `dir`: daemons of a run
 * whose namespace is already gone (a deleted namespace lives on while a
 * process is in it).
 */
async function killByPath(dir: string): Promise<void> {
  const { stdout } = await run(['pgrep', '-f', `${dir}/`], { allowFail: true });
  const pids = stdout.split('\n').filter(Boolean).map(Number).filter((p) => p !== process.pid);
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  for (let i = 0; i < 50 && pids.some(pidAlive); i++) await new Promise((r) => setTimeout(r, 20));
}

/** Deletes links in the root namespace that carry the prefix (veth ends a crash left behind). */
async function removeRootLinks(prefix: string): Promise<void> {
  const { stdout } = await run(['ip', '-j', 'link', 'show'], { allowFail: true });
  const links = stdout.trim() ? (JSON.parse(stdout) as { ifname: string }[]) : [];
  for (const l of links) {
    if (l.ifname.startsWith(prefix)) await run(['ip', 'link', 'delete', l.ifname], { allowFail: true });
  }
}

async function ownerAlive(dir: string): Promise<boolean> {
  try {
    const owner = JSON.parse(await readFile(join(dir, 'owner.json'), 'utf8')) as { pid?: number };
    return typeof owner.pid === 'number' && owner.pid !== process.pid ? pidAlive(owner.pid) : owner.pid === process.pid;
  } catch {
    return false;
  }
}

/**
 * Removes leftovers of runs of `kind` whose owner process is gone:
 * processes in their namespaces, the namespaces, root-namespace links and
 * run directories. Runs of live owners are left alone. Returns the prefixes
 * it removed.
 */
export async function sweep(options: { kind: string; baseDir?: string }): Promise<string[]> {
  const baseDir = options.baseDir ?? DEFAULT_BASE_DIR;
  const pattern = namePattern(options.kind);
  const prefixes = new Set<string>();
  const { stdout: nsList } = await run(['ip', 'netns', 'list'], { allowFail: true });
  for (const line of nsList.split('\n')) {
    const m = pattern.exec(line.split(' ')[0] ?? '');
    if (m) prefixes.add(m[0]);
  }
  const { stdout: linkJson } = await run(['ip', '-j', 'link', 'show'], { allowFail: true });
  for (const l of linkJson.trim() ? (JSON.parse(linkJson) as { ifname: string }[]) : []) {
    const m = pattern.exec(l.ifname);
    if (m) prefixes.add(m[0]);
  }
  for (const entry of await readdir(baseDir).catch(() => [] as string[])) {
    const m = pattern.exec(entry);
    if (m && m[0] === entry) prefixes.add(entry);
  }
  const removed: string[] = [];
  for (const prefix of prefixes) {
    const dir = join(baseDir, prefix);
    if (await ownerAlive(dir)) continue;
    for (const line of nsList.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      if (name.startsWith(`${prefix}-`)) await removeNamespace(name);
    }
    await removeRootLinks(prefix);
    await killByPath(dir);
    await rm(dir, { recursive: true, force: true });
    removed.push(prefix);
  }
  return removed;
}
