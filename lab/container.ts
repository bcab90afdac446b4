// The agent's container image (packaging/build-image) booted with
// systemd-nspawn into a lab host's network namespace, as the server would run
// it with nspawn/hostnet.nspawn: systemd inside, hostnet-agent.service and
// frr.service, the host's network. Commands run inside through nsenter (the
// lab machine has no systemd-machined to register with).
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Lab, type LabProcess, type Netns, type RunResult, run, waitFor } from '../test/lab/index.js';

const REPO = fileURLToPath(new URL(import.meta.url.endsWith('.js') ? '../../' : '../', import.meta.url));

/**
 * The image with systemd-container beside the agent: the container e2e's
 * "new Debian base" and the systemd e2e's server OS. One set of arguments, so
 * whichever of the two runs second finds it built.
 */
export const SYSTEMD_CONTAINER_IMAGE = ['--version', '0.2.0-newbase.1', '--extra-packages', 'systemd-container'] as const;

/** The upgrade both e2e tests install over the first image: the same base, another version. */
export const UPGRADE_IMAGE = ['--version', '0.1.0-upgrade.1'] as const;

/** Runs packaging/build-image with `args`: the artifact's path, and what the script said (its stderr). */
export async function buildImage(...args: string[]): Promise<{ path: string; log: string }> {
  const r = await run(['bash', join(REPO, 'packaging/build-image'), ...args], { timeoutMs: 900_000 });
  return { path: r.stdout.trim().split('\n').pop() ?? '', log: r.stderr };
}

/**
 * The first image, then its upgrade (built while the other image's base is
 * still being made; after the first, so that the two do not make the same
 * Debian base twice). The first image's path and log.
 */
export async function firstAndUpgrade(): Promise<{ path: string; log: string }> {
  const first = await buildImage();
  await buildImage(...UPGRADE_IMAGE);
  return first;
}

export interface ContainerOptions {
  /** The image tarball. */
  readonly image: string;
  /** host path -> container path */
  readonly binds: Readonly<Record<string, string>>;
  /** Extra files written into the root filesystem before boot (path in the container -> content). */
  readonly files?: Readonly<Record<string, string>>;
  /** Where to unpack (default: a fresh directory in the lab). */
  readonly rootDir?: string;
  /** Arguments for the container's systemd (e.g. systemd.mask=UNIT). */
  readonly initArgs?: readonly string[];
  /** Wait until systemd inside reports running (default true). */
  readonly waitRunning?: boolean;
}

/** The settings of nspawn/hostnet.nspawn as command-line options (Bind= aside, which the caller maps to lab paths). */
export async function nspawnSettings(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  const args: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'Boot' && value === 'yes') args.push('--boot');
    if (key === 'Capability') args.push(`--capability=${value.split(/\s+/).join(',')}`);
    if (key === 'PrivateUsers') args.push(`--private-users=${value}`);
    if (key === 'ResolvConf') args.push(`--resolv-conf=${value}`);
    if (key === 'Timezone') args.push(`--timezone=${value}`);
    if (key === 'LinkJournal') args.push(`--link-journal=${value}`);
  }
  return args;
}

export class Container {
  /** When systemd-nspawn was started (after unpacking). */
  readonly startedAt = Date.now();

  private constructor(readonly ns: Netns, readonly root: string, readonly process: LabProcess) {}

  /** Unpacks the image and boots it in `ns`; resolves once systemd inside reports running (or degraded). */
  static async boot(lab: Lab, ns: Netns, o: ContainerOptions): Promise<Container> {
    const root = o.rootDir ?? join(lab.dir, `rootfs-${ns.short}`);
    await mkdir(root, { recursive: true });
    if ((await readdir(root)).length === 0) await run(['tar', '-C', root, '--numeric-owner', '-xzf', o.image], { timeoutMs: 120_000 });
    for (const [path, content] of Object.entries(o.files ?? {})) {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), content);
    }
    const settings = await nspawnSettings(join(root, 'opt/hostnet/nspawn/hostnet.nspawn'));
    const argv = [
      'systemd-nspawn', '--directory', root, '--machine', `hostnet-${ns.short}`, ...settings,
      '--register=no', '--keep-unit', `--network-namespace-path=/run/netns/${ns.name}`, '--console=read-only',
      ...Object.entries(o.binds).map(([from, to]) => `--bind=${from}:${to}`),
      ...(o.initArgs?.length ? ['--', ...o.initArgs] : []),
    ];
    // systemd-nspawn itself runs in the root namespace; the container joins ns by path.
    const proc = lab.spawnProcess(`nspawn-${ns.short}`, argv);
    const c = new Container(ns, root, proc);
    if (o.waitRunning !== false) await c.waitRunning();
    return c;
  }

  private init: number | undefined;

  /** PID (in the root pid namespace) of the container's init; found once, it stays for the container's life. */
  async initPid(): Promise<number> {
    const pid = this.process.child.pid;
    if (!pid) throw new Error('systemd-nspawn has no pid');
    this.init ??= await waitFor('the container\'s init', async () => {
      const { stdout } = await run(['pgrep', '-P', String(pid)], { allowFail: true });
      for (const child of stdout.split('\n').filter(Boolean)) {
        const status = await readFile(`/proc/${child}/status`, 'utf8').catch(() => '');
        const ns = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
        if (ns && ns.length > 1 && ns.at(-1) === '1') return Number(child);
      }
      return undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    return this.init;
  }

  /** The command prefix that runs a command in the container's namespaces (what `machinectl shell` would). */
  async nsenter(): Promise<string[]> {
    return ['nsenter', '--target', String(await this.initPid()), '--mount', '--uts', '--ipc', '--pid', '--net', '--cgroup', '--'];
  }

  /** Runs argv inside the container (all its namespaces). */
  async exec(argv: readonly string[], options: { allowFail?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
    // A clean environment: the caller's (a test runner's NODE_OPTIONS, say) means nothing inside.
    return run([...await this.nsenter(), 'env', '-i', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...argv], options);
  }

  private async waitRunning(): Promise<string> {
    return waitFor('systemd in the container to finish booting', async () => {
      if (this.process.child.exitCode !== null) throw new Error(`systemd-nspawn exited (${this.process.child.exitCode})`);
      const r = await this.exec(['systemctl', 'is-system-running'], { allowFail: true, timeoutMs: 10_000 });
      const state = r.stdout.trim();
      return state === 'running' || state === 'degraded' ? state : undefined;
    }, { timeoutMs: 120_000, intervalMs: 250 });
  }

  /** `systemctl show UNIT -p PROPS` as an object. */
  async unit(name: string, props: readonly string[]): Promise<Record<string, string>> {
    const { stdout } = await this.exec(['systemctl', 'show', name, '-p', props.join(',')]);
    return Object.fromEntries(stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  /** Powers the container off (systemd inside stops its units); resolves when nspawn exited. */
  async stop(): Promise<void> {
    if (this.process.child.exitCode === null) {
      // systemd-nspawn turns SIGTERM into a clean poweroff of the booted container.
      this.process.child.kill('SIGTERM');
      await Promise.race([this.process.exited, new Promise((r) => setTimeout(r, 30_000))]);
    }
    await this.process.stop();
  }
}
