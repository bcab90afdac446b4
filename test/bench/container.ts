// The agent's container image: its size, and how long from systemd-nspawn's
// start until hostnet-agent.service is active (READY: a firewall policy in
// force) — on a first boot (the policy comes from the controller) and on a
// reboot (from the cached state) — against the same image booted with the
// agent masked (systemd alone reaching running), in the same run.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab, freePort, run, waitFor } from '../lab/index.js';
import { World } from '../../lab/world.js';
import { Container, buildImage } from '../../lab/container.js';

export interface ContainerResult {
  imageMb: number;
  unpackedMb: number;
  firstBootMs: number[];
  rebootMs: number[];
  systemdAloneMs: number[];
}

export async function containerBench(rounds: number): Promise<ContainerResult> {
  const image = (await buildImage()).path;
  const lab = await Lab.create({ kind: 'b' });
  try {
    const world = await World.build(lab, { grpcPort: await freePort(), httpPort: await freePort(), external: ['h1'] });
    const h1 = world.host('h1');
    const etc = join(lab.dir, 'etc-hostnet');
    await mkdir(etc, { recursive: true });
    await writeFile(join(etc, 'agent.yaml'), world.agentConfig('h1', { stateDir: '/var/lib/hostnet' }));
    await mkdir(join(etc, 'tls'), { recursive: true });
    await copyFile(world.caFile, join(etc, 'tls', 'ca.pem'));
    const root = join(lab.dir, 'rootfs');
    await mkdir(root, { recursive: true });
    await run(['tar', '-C', root, '--numeric-owner', '-xzf', image], { timeoutMs: 120_000 });
    const unpackedMb = Number((await run(['du', '-sm', root])).stdout.split('\t')[0]);
    const boot = async (state: string, until: (c: Container) => Promise<boolean>, initArgs: string[] = []): Promise<number> => {
      await mkdir(state, { recursive: true, mode: 0o700 });
      // A fresh server enrolls (as at deploy), one already booted has its certificate.
      if (!existsSync(join(state, 'tls', 'agent.pem'))) await writeFile(join(etc, 'tls', 'enrollment-token'), await world.enrollmentToken('h1'));
      const c = await Container.boot(lab, h1.ns, {
        image, rootDir: root, initArgs, waitRunning: false,
        binds: { [etc]: '/etc/hostnet', [state]: '/var/lib/hostnet' },
      });
      try {
        await waitFor('the container to be ready', async () => ((await until(c).catch(() => false)) ? true : undefined), { timeoutMs: 120_000, intervalMs: 20 });
        return Date.now() - c.startedAt;
      } finally {
        await c.stop();
      }
    };
    const agentActive = async (c: Container) => (await c.unit('hostnet-agent.service', ['ActiveState'])).ActiveState === 'active';
    const systemdUp = async (c: Container) => /^(running|degraded)$/.test((await c.exec(['systemctl', 'is-system-running'], { allowFail: true })).stdout.trim());
    const out: ContainerResult = { imageMb: (await stat(image)).size / 1e6, unpackedMb, firstBootMs: [], rebootMs: [], systemdAloneMs: [] };
    for (let i = 0; i < rounds; i++) {
      const state = join(lab.dir, `state-${i}`);
      out.systemdAloneMs.push(await boot(join(lab.dir, `state-masked-${i}`), systemdUp, ['systemd.mask=hostnet-agent.service', 'systemd.mask=frr.service']));
      out.firstBootMs.push(await boot(state, agentActive));
      out.rebootMs.push(await boot(state, agentActive));
      await rm(state, { recursive: true, force: true });
    }
    await world.close();
    return out;
  } finally {
    await lab.teardown();
  }
}
