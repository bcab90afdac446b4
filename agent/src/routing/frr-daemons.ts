// FRR's daemons as processes: which run (from their pid files), with which
// command line, and whether watchfrr supervises them; and FRR's start options
// (/etc/frr/daemons), of which the agent owns bgpd's: the listen port is a
// command-line option, not configuration, so the intent reaches bgpd only
// through this file and a restart.
import { open, readFile, readdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runner } from '../../../common/run.js';
import type { ValidIntent } from './intent.js';

export interface DaemonState {
  readonly name: string;
  /** The pid its pid file names, if the file exists. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Its command line (empty when not running). */
  readonly args: readonly string[];
  /** When it started (its pid file was written), in ms since the epoch; 0 when unknown. */
  readonly startedAt: number;
}

export interface FrrProcessState {
  readonly zebra: DaemonState;
  readonly bgpd: DaemonState;
  /** watchfrr runs: it restarts a daemon that dies (FRR under systemd, as in the container). */
  readonly supervised: boolean;
}

/** Reads FRR's pid files and /proc (FrrProcesses; fakes in unit tests). */
export interface FrrProcesses {
  state(): Promise<FrrProcessState>;
  /** Kills a daemon at once, without a goodbye to its peers (BGP graceful restart keeps their routes). */
  kill(pid: number): void;
  /** Starts a daemon the way FRR's init scripts do (its options from the daemons file, then its configuration). */
  start(name: string): Promise<void>;
  /** watchfrr is starting `name` again now: one of its children (its restart command) names the daemon. */
  restarting(name: string): Promise<boolean>;
}

async function daemon(runDir: string, name: string): Promise<DaemonState> {
  const file = join(runDir, `${name}.pid`);
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim()) || undefined;
  if (pid === undefined) return { name, pid, running: false, args: [], startedAt: 0 };
  const [cmdline, info] = await Promise.all([readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''), stat(file).catch(() => undefined)]);
  const args = cmdline.split('\0').filter(Boolean);
  // A stale pid file may name a pid that is now another process.
  const running = args.length > 0 && (args[0] ?? '').endsWith(name);
  return { name, pid, running, args: running ? args : [], startedAt: info?.mtimeMs ?? 0 };
}

/**
 * The cgroup directories a process is in, in the hierarchies systemd tracks
 * processes with: the unified one (cgroup v2, or "unified" in hybrid mode)
 * and v1's name=systemd. Empty when unknown.
 */
export async function trackingCgroups(pid: number, procRoot = '/proc'): Promise<string[]> {
  const [cgroups, mountinfo] = await Promise.all([
    readFile(`${procRoot}/${pid}/cgroup`, 'utf8').catch(() => ''),
    readFile(`${procRoot}/self/mountinfo`, 'utf8').catch(() => ''),
  ]);
  return cgroupDirs(cgroups, mountinfo);
}

/** From /proc/PID/cgroup and /proc/self/mountinfo: the process's directories in the tracking hierarchies. Pure. */
export function cgroupDirs(cgroups: string, mountinfo: string): string[] {
  const mounts = new Map<string, string>();
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    const mountPoint = left?.split(' ')[4];
    const [fstype, , superOptions] = (right ?? '').split(' ');
    if (!mountPoint) continue;
    if (fstype === 'cgroup2') mounts.set('', mountPoint);
    else if (fstype === 'cgroup' && (superOptions ?? '').split(',').includes('name=systemd')) mounts.set('name=systemd', mountPoint);
  }
  const dirs: string[] = [];
  for (const line of cgroups.split('\n')) {
    const m = /^\d+:([^:]*):(\/.*)$/.exec(line);
    if (!m || m[2] === '/') continue;
    const mount = mounts.get(m[1] ?? '');
    if (mount) dirs.push(`${mount}${m[2]}`);
  }
  return dirs;
}

/**
 * `runDir`: the pid files; `run`: runs FRR's start script (Debian's:
 * /usr/lib/frr/watchfrr.sh start NAME). A daemon the agent starts goes into
 * watchfrr's cgroup (FRR's service), not the agent's: systemd stopping the
 * agent (an upgrade) must not take bgpd with it.
 */
export function frrProcesses(runDir: string, run: Runner, startScript = '/usr/lib/frr/watchfrr.sh'): FrrProcesses {
  return {
    async start(name) {
      const watchfrr = await daemon(runDir, 'watchfrr');
      const dirs = watchfrr.running && watchfrr.pid !== undefined ? await trackingCgroups(watchfrr.pid) : [];
      // The shell moves itself into FRR's cgroups, then becomes the start script: the daemon is born there.
      const r = await run(['sh', '-c', 'n="$1"; shift; for d in "$@"; do echo $$ > "$d/cgroup.procs" || echo "cannot join $d" >&2; done; exec "$0" start "$n"',
        startScript, name, ...dirs], { timeoutMs: 60_000 });
      if (/cannot join/.test(r.stderr)) throw new Error(`started ${name} but could not move it out of the agent's cgroup: ${r.stderr.trim()}`);
    },
    async state() {
      const [zebra, bgpd, watchfrr] = await Promise.all([daemon(runDir, 'zebra'), daemon(runDir, 'bgpd'), daemon(runDir, 'watchfrr')]);
      return { zebra, bgpd, supervised: watchfrr.running };
    },
    kill(pid) {
      process.kill(pid, 'SIGKILL');
    },
    async restarting(name) {
      const watchfrr = await daemon(runDir, 'watchfrr');
      if (!watchfrr.running || watchfrr.pid === undefined) return false;
      return (await childCommands(watchfrr.pid)).some((args) => args.includes(name));
    },
  };
}

/** The command lines of a process's children (from /proc/PID/stat's parent field). */
async function childCommands(parent: number, procRoot = '/proc'): Promise<string[][]> {
  const pids = (await readdir(procRoot).catch(() => [] as string[])).filter((d) => /^\d+$/.test(d));
  const out: string[][] = [];
  await Promise.all(pids.map(async (pid) => {
    const stat = await readFile(`${procRoot}/${pid}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid !== parent) return;
    out.push((await readFile(`${procRoot}/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean));
  }));
  return out;
}

/** The port a bgpd command line listens on (`-p N`, `--bgp_port N`; 179 when not given). Pure. */
export function listenPortOf(args: readonly string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '-p' || a === '--bgp_port') return Number(args[i + 1]);
    const m = /^(?:-p|--bgp_port=)(\d+)$/.exec(a);
    if (m) return Number(m[1]);
  }
  return 179;
}

/** bgpd's command-line options for the intent's listen port (FRR has no config command for it). */
export function bgpdOptions(intent: Pick<ValidIntent, 'listenPort'>): string {
  return `-A 127.0.0.1 -p ${intent.listenPort}`;
}

/**
 * The daemons file with bgpd enabled and `bgpd_options` as given; every other
 * line (zebra's options, other daemons) stays as it is. Pure.
 */
export function withBgpdOptions(text: string, options: string): string {
  const lines = text.split('\n');
  const set = (key: string, value: string): void => {
    const i = lines.findIndex((l) => new RegExp(`^\\s*${key}=`).test(l));
    if (i >= 0) lines[i] = `${key}=${value}`;
    else lines.splice(lines.length - (lines.at(-1) === '' ? 1 : 0), 0, `${key}=${value}`);
  };
  set('bgpd', 'yes');
  set('bgpd_options', `"${options}"`);
  return lines.join('\n');
}

/**
 * Writes `options` into FRR's daemons file (atomically, keeping its owner and
 * mode) when they differ. Returns whether the file changed. A missing file is
 * created with just bgpd's lines.
 */
export async function writeBgpdOptions(path: string, options: string): Promise<boolean> {
  const before = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const after = withBgpdOptions(before, options);
  if (after === before) return false;
  const owner = await stat(path).catch(() => undefined);
  const tmp = `${path}.hostnet-tmp`;
  const fh = await open(tmp, 'w', owner ? owner.mode & 0o777 : 0o640);
  try {
    await fh.writeFile(after.endsWith('\n') ? after : `${after}\n`);
    await fh.sync();
    if (owner) await fh.chown(owner.uid, owner.gid);
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  return true;
}
