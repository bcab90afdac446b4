// FRR (zebra + bgpd) in a lab namespace, each instance with its own
// directory, config, vty socket and logs. Daemons run in the foreground as
// children of the test, so teardown stops them and nothing is daemonised.
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run, waitFor } from './exec.js';
import type { LabProcess, Netns } from './lab.js';

const FRR_BIN = '/usr/lib/frr';

export interface FrrOptions {
  /** Integrated frr.conf text both daemons read. */
  readonly config: string;
  /** bgpd's listen port: 179 by default, another port, or null for none. */
  readonly bgpPort?: number | null;
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
    const dir = join(ns.lab.dir, `frr-${ns.short}`);
    const { uid, gid } = await frrIds();
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chown(dir, uid, gid);
    const conf = join(dir, 'frr.conf');
    await writeFile(conf, options.config, { mode: 0o640 });
    await chown(conf, uid, gid);
    const common = ['-f', conf, '-z', join(dir, 'zserv.api'), '--vty_socket', dir, '-P', '0'];
    const zebra = ns.spawn('zebra', [join(FRR_BIN, 'zebra'), ...common, '-i', join(dir, 'zebra.pid'),
      '--log', `file:${join(dir, 'zebra.log')}`]);
    const daemons = [zebra];
    const frr = new Frr(ns, dir, daemons);
    try {
      await frr.waitSocket(zebra, 'zserv.api');
      const port = options.bgpPort === undefined ? 179 : options.bgpPort ?? 0;
      const bgpd = ns.spawn('bgpd', [join(FRR_BIN, 'bgpd'), ...common, '-i', join(dir, 'bgpd.pid'),
        '-p', String(port), '--log', `file:${join(dir, 'bgpd.log')}`]);
      daemons.push(bgpd);
      await frr.waitSocket(bgpd, 'bgpd.vty');
    } catch (err) {
      await frr.stop();
      throw err;
    }
    return frr;
  }

  private async waitSocket(daemon: LabProcess, socket: string): Promise<void> {
    await waitFor(`${daemon.name} in ${this.ns.name}`, async () => {
      if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) {
        throw new Error(`${daemon.name} exited (${daemon.child.exitCode ?? daemon.child.signalCode}); see ${this.dir}`);
      }
      return (await exists(join(this.dir, socket))) ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
  }

  /** Runs one vtysh command against this instance and returns its output. */
  async vtysh(command: string): Promise<string> {
    const { stdout } = await run(['vtysh', '--vty_socket', this.dir, '-c', command], { timeoutMs: 15_000 });
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
