// Applying frr.conf without restarting FRR: frr-reload.py --test shows what
// would change; --reload applies only that (vtysh line by line), so sessions
// whose configuration did not change are never reset. Nothing to change, no
// reload. The file FRR boots from is replaced (write, fsync, rename) only
// after a successful apply.
import { open, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runner } from '../../../common/run.js';

export interface FrrPaths {
  /** Where frr.conf lives (and vtysh.conf). */
  readonly confDir: string;
  /** Where the daemons' pid files are. */
  readonly runDir: string;
  /** Directory of the daemons' vty sockets. */
  readonly vtySocket: string;
  readonly bindir?: string;
  readonly reloadScript?: string;
}

/** What frr-reload would change, without the lines FRR owns itself (hostname, version). */
export interface ReloadDiff {
  readonly add: readonly string[];
  readonly remove: readonly string[];
}

export class FrrApplyError extends Error {
  override readonly name = 'FrrApplyError';
  constructor(message: string, readonly output: string) {
    super(message);
  }
}

/**
 * Lines that are not the agent's business: the hostname comes from the
 * machine, forwarding is the host's (the rendered text follows the kernel).
 */
const NOT_OURS = /^(no )?hostname |^frr version |^(no )?ip(v6)? forwarding$/;

/** Parses `frr-reload.py --test` output. Pure. */
export function parseReloadTest(stdout: string): ReloadDiff {
  const add: string[] = [];
  const remove: string[] = [];
  let section: string[] | undefined;
  for (const raw of stdout.split('\n')) {
    const line = raw.trimEnd();
    if (line === 'Lines To Delete') section = remove;
    else if (line === 'Lines To Add') section = add;
    else if (/^=+$/.test(line) || line === '') continue;
    else if (section && !NOT_OURS.test(line.trim())) section.push(line);
  }
  return { add, remove };
}

export const isEmptyDiff = (d: ReloadDiff): boolean => d.add.length === 0 && d.remove.length === 0;

/** What the routing service needs from FRR (FrrApplier; fakes in unit tests). */
export interface FrrConfigurer {
  diff(text: string): Promise<ReloadDiff>;
  apply(text: string, previous?: string, o?: { known?: ReloadDiff; expect?: string }): Promise<ReloadDiff>;
  /** The running configuration as FRR prints it (without hostname and version). */
  running(): Promise<string>;
  /**
   * Binds each `ip[v6] protocol bgp route-map ...` line again (unbound, then
   * bound): zebra re-evaluates every BGP route and installs those the kernel
   * refused before. Throws FrrApplyError.
   */
  rebind(protocolLines: readonly string[]): Promise<void>;
  /**
   * Lines removed by hand put back with `commands` (putBackCommands) in one
   * vtysh call, then `text` written for FRR's next start: true when FRR
   * prints `expect` again, false when it does not (the caller reloads).
   */
  putBack(text: string, commands: readonly string[], expect: string): Promise<boolean>;
}

export class FrrApplier implements FrrConfigurer {
  /** The change in progress: FRR 10's mgmtd refuses a second configuration session while one holds its lock. */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(private readonly run: Runner, private readonly paths: FrrPaths) {}

  /** Runs configuration changes one at a time (an apply, a re-bind), in call order. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.busy.then(fn);
    this.busy = next.catch(() => undefined);
    return next;
  }

  private args(file: string): string[] {
    const p = this.paths;
    return ['--bindir', p.bindir ?? '/usr/bin', '--confdir', p.confDir, '--rundir', p.runDir, '--vty_socket', p.vtySocket, file];
  }

  private get script(): string {
    return this.paths.reloadScript ?? '/usr/lib/frr/frr-reload.py';
  }

  private async candidate(text: string): Promise<string> {
    const file = join(this.paths.confDir, 'frr.conf.hostnet-candidate');
    await writeFile(file, text, { mode: 0o640 });
    return file;
  }

  /** What applying `text` would change in the running configuration. Throws FrrApplyError. */
  async diff(text: string): Promise<ReloadDiff> {
    const file = await this.candidate(text);
    try {
      const r = await this.run(['python3', this.script, '--test', ...this.args(file)], { allowFail: true, timeoutMs: 60_000 });
      if (r.code !== 0) throw new FrrApplyError(`frr-reload.py --test failed: ${lastError(r.stderr)}`, r.stderr);
      return parseReloadTest(r.stdout);
    } finally {
      await unlink(file).catch(() => undefined);
    }
  }

  /**
   * Applies `text` when it differs from the running configuration. Returns
   * what changed (empty: nothing was done). On failure re-applies
   * `previous` (when given) and throws FrrApplyError. `o.known`: the diff the
   * caller just read (not read again); `o.expect`: the running configuration
   * FRR printed when `text` was last in force, checked after the reload
   * instead of running frr-reload --test once more (a repair's fast path).
   */
  apply(text: string, previous?: string, o: { known?: ReloadDiff; expect?: string } = {}): Promise<ReloadDiff> {
    return this.exclusive(() => this.applyNow(text, previous, o));
  }

  private async applyNow(text: string, previous: string | undefined, o: { known?: ReloadDiff; expect?: string }): Promise<ReloadDiff> {
    if (!(await this.isRunning())) {
      // FRR not started yet (the agent starts first at boot): it will read the file.
      await this.persist(text);
      return { add: text.split('\n').filter((l) => l.trim() && !l.startsWith('!')), remove: [] };
    }
    const d = o.known ?? await this.diff(text);
    if (isEmptyDiff(d)) {
      await this.persist(text);
      return d;
    }
    const file = await this.candidate(text);
    try {
      // frr-reload removes a neighbor and then fails to remove the neighbor's other lines (gone with it), or
      // removes a route-map before what uses it: it exits 1, or leaves lines for a second pass. What counts is
      // the result: FRR running exactly `text`, after at most two passes.
      let r = await this.run(['python3', this.script, '--reload', ...this.args(file)], { allowFail: true, timeoutMs: 120_000 });
      const same = r.code === 0 && o.expect !== undefined && (await this.running()) === o.expect;
      let after = same ? undefined : await this.diff(text);
      if (after && !isEmptyDiff(after)) {
        // diff() used (and removed) the candidate file: written again.
        await this.candidate(text);
        r = await this.run(['python3', this.script, '--reload', ...this.args(file)], { allowFail: true, timeoutMs: 120_000 });
        after = await this.diff(text);
      }
      if (after && !isEmptyDiff(after)) {
        if (previous !== undefined) await this.restore(previous);
        const why = r.code !== 0 ? lastError(r.stderr || r.stdout) : `still differs after reload: ${[...after.remove, ...after.add].slice(0, 3).join('; ')}`;
        throw new FrrApplyError(`FRR did not take the configuration: ${why}`, `${r.stdout}\n${r.stderr}`);
      }
    } finally {
      await unlink(file).catch(() => undefined);
    }
    await this.persist(text);
    await this.resend();
    return d;
  }

  /**
   * FRR's running configuration as it prints it, without the lines that are
   * not ours (hostname, version): compared with itself over time, a change
   * of one line shows in one cheap call. Throws FrrApplyError.
   */
  async running(): Promise<string> {
    const r = await this.run(['vtysh', '--vty_socket', this.paths.vtySocket, '-c', 'show running-config'], { allowFail: true, timeoutMs: 15_000 });
    if (r.code !== 0) throw new FrrApplyError(`show running-config failed: ${lastError(r.stderr || r.stdout)}`, r.stderr);
    const lines = r.stdout.split('\n');
    const start = lines.findIndex((l) => l.startsWith('Current configuration:'));
    return lines.slice(start + 1).filter((l) => !NOT_OURS.test(l.trim()) && l.trim() !== 'end').join('\n');
  }

  rebind(protocolLines: readonly string[]): Promise<void> {
    return this.exclusive(() => this.rebindNow(protocolLines));
  }

  /**
   * One vtysh call instead of frr-reload (a python start, a diff, many
   * vtysh calls): a tenant's removed `network` line is back about a second
   * sooner, and its traffic with it.
   */
  putBack(text: string, commands: readonly string[], expect: string): Promise<boolean> {
    return this.exclusive(async () => {
      const r = await this.run(['vtysh', '--vty_socket', this.paths.vtySocket, ...commands.flatMap((c) => ['-c', c])], { allowFail: true, timeoutMs: 15_000 });
      if (r.code !== 0 || (await this.running().catch(() => undefined)) !== expect) return false;
      await this.persist(text);
      await this.resend();
      return true;
    });
  }

  private async rebindNow(protocolLines: readonly string[]): Promise<void> {
    if (protocolLines.length === 0) return;
    const commands = ['configure terminal', ...protocolLines.flatMap((l) => [`no ${l}`, l]), 'end'];
    const r = await this.run(['vtysh', '--vty_socket', this.paths.vtySocket, ...commands.flatMap((c) => ['-c', c])], { allowFail: true, timeoutMs: 15_000 });
    if (r.code !== 0) throw new FrrApplyError(`re-binding the source route-maps failed: ${lastError(r.stderr || r.stdout)}`, r.stderr);
  }

  /**
   * Re-sends every peer what the outbound policy now permits (a route
   * refresh, no session reset). FRR 8.4 keeps advertising what a deleted
   * route-map entry permitted (a hand edit reverted, say) until then.
   */
  private async resend(): Promise<void> {
    const r = await this.run(['vtysh', '--vty_socket', this.paths.vtySocket, '-c', 'clear bgp * soft out'], { allowFail: true, timeoutMs: 15_000 });
    if (r.code !== 0) throw new FrrApplyError(`clear bgp * soft out failed: ${lastError(r.stderr || r.stdout)}`, r.stderr);
  }

  private async restore(previous: string): Promise<void> {
    const file = await this.candidate(previous);
    try {
      await this.run(['python3', this.script, '--reload', ...this.args(file)], { allowFail: true, timeoutMs: 120_000 });
    } finally {
      await unlink(file).catch(() => undefined);
    }
  }

  /** Whether zebra and bgpd run: both vty sockets exist. */
  private async isRunning(): Promise<boolean> {
    const has = (name: string) => stat(join(this.paths.vtySocket, name)).then(() => true, () => false);
    return (await has('zebra.vty')) && (await has('bgpd.vty'));
  }

  /**
   * frr.conf for the next FRR start: written, fsynced, renamed into place,
   * owned like its directory (FRR's daemons run as frr and read it at start).
   */
  private async persist(text: string): Promise<void> {
    const target = join(this.paths.confDir, 'frr.conf');
    const tmp = `${target}.hostnet-tmp`;
    const owner = await stat(this.paths.confDir);
    const fh = await open(tmp, 'w', 0o640);
    try {
      await fh.writeFile(text);
      await fh.sync();
      await fh.chown(owner.uid, owner.gid);
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  }
}

function lastError(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.filter((l) => /error|fail|unknown/i.test(l)).pop() ?? lines.pop() ?? 'no output';
}
