// FRR (zebra + bgpd) in a lab namespace, each instance with its own
// directory, config, vty socket and logs. Daemons run in the foreground as
// children of the test, so teardown stops them and nothing is daemonised.
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run, waitFor } from './exec.js';
import type { LabProcess, Netns } from './lab.js';

const FRR_BIN = '/usr/lib/frr';

export interface FrrOptions {
  /** Integrated frr.conf text both daemons read; omitted: the frr.conf already in the directory (written by an agent). */
  readonly config?: string;
  /** bgpd's listen port: 179 by default, another port, or null for none. */
  readonly bgpPort?: number | null;
  /**
   * FRR's start options file (the agent's rendered /etc/frr/daemons): bgpd
   * starts with its `bgpd_options` (the listen port among them), as
   * frrinit.sh would start it; bgpPort is then not used.
   */
  readonly daemonsFile?: string;
}

/** The value of `NAME_options="..."` in a daemons file. Pure. */
export function daemonOptions(text: string, name: string): string[] {
  const m = new RegExp(`^\\s*${name}_options="([^"]*)"`, 'm').exec(text);
  return (m?.[1] ?? '').split(/\s+/).filter(Boolean);
}

async function frrIds(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run(['id', '-u', 'frr'])).stdout.trim());
  const gid = Number((await run(['id', '-g', 'frr'])).stdout.trim());
  return { uid, gid };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** A running zebra + bgpd pair in one namespace. */
export class Frr {
  private constructor(readonly ns: Netns, readonly dir: string, private readonly daemons: LabProcess[]) {}

  /**
   * Writes the config into a fresh directory owned by frr and starts zebra,
   * then bgpd; resolves once both vty sockets answer. Throws with the
   * daemon's log when one exits early.
   */
  static async start(ns: Netns, options: FrrOptions): Promise<Frr> {
    const dir = await Frr.prepare(ns);
    const conf = join(dir, 'frr.conf');
    if (options.config !== undefined) {
      const { uid, gid } = await frrIds();
      await writeFile(conf, options.config, { mode: 0o640 });
      await chown(conf, uid, gid);
    }
    const common = ['-f', conf, '-z', join(dir, 'zserv.api'), '--vty_socket', dir, '-P', '0'];
    const zebra = ns.spawn('zebra', [join(FRR_BIN, 'zebra'), ...common, '-i', join(dir, 'zebra.pid'),
      '--log', `file:${join(dir, 'zebra.log')}`]);
    const daemons = [zebra];
    const frr = new Frr(ns, dir, daemons);
    try {
      await frr.waitSocket(zebra, 'zserv.api');
      const port = options.bgpPort === undefined ? 179 : options.bgpPort ?? 0;
      const startOptions = options.daemonsFile ? daemonOptions(await readFile(options.daemonsFile, 'utf8'), 'bgpd') : ['-p', String(port)];
      const bgpd = ns.spawn('bgpd', [join(FRR_BIN, 'bgpd'), ...common, '-i', join(dir, 'bgpd.pid'),
        ...startOptions, '--log', `file:${join(dir, 'bgpd.log')}`]);
      daemons.push(bgpd);
      await frr.waitSocket(bgpd, 'bgpd.vty');
    } catch (err) {
      await frr.stop();
      throw err;
    }
    return frr;
  }

  /**
   * The instance's directory, owned by frr, with an empty vtysh.conf
   * (frr-reload.py reads it): where an agent writes frr.conf and the start
   * options before FRR starts, as in the container. Idempotent.
   */
  static async prepare(ns: Netns): Promise<string> {
    const dir = join(ns.lab.dir, `frr-${ns.short}`);
    const { uid, gid } = await frrIds();
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chown(dir, uid, gid);
    if (!(await exists(join(dir, 'vtysh.conf')))) await writeFile(join(dir, 'vtysh.conf'), '');
    return dir;
  }

  private async waitSocket(daemon: LabProcess, socket: string): Promise<void> {
    await waitFor(`${daemon.name} in ${this.ns.name}`, async () => {
      if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) {
        throw new Error(`${daemon.name} exited (${daemon.child.exitCode ?? daemon.child.signalCode}); see ${this.dir}`);
      }
      return (await exists(join(this.dir, socket))) ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
  }

  /** Runs a vtysh command (or several in one session, e.g. 'configure terminal' and what follows) and returns the output. */
  async vtysh(command: string | readonly string[]): Promise<string> {
    const commands = typeof command === 'string' ? [command] : command;
    const { stdout } = await run(['vtysh', '--vty_socket', this.dir, ...commands.flatMap((c) => ['-c', c])], { timeoutMs: 15_000 });
    return stdout;
  }

  /** Runs a `... json` show command and parses its output. */
  async vtyshJson<T = unknown>(command: string): Promise<T> {
    return JSON.parse(await this.vtysh(command)) as T;
  }

  /** Stops bgpd, then zebra. Idempotent. */
  async stop(): Promise<void> {
    for (const d of [...this.daemons].reverse()) await d.stop();
  }
}
