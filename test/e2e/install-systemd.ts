// The deploy-time installer on a server whose PID 1 is systemd. This
// machine's is not, so the "server" is itself a container: a Debian trixie
// with systemd and systemd-container (the agent image plus systemd-container,
// its own agent and FRR masked) booted into lab host h1's namespace. Inside
// it, install-agent does for real what provisioning does: unpacks the image
// under /var/lib/machines, writes the settings, `systemctl enable --now
// systemd-nspawn@hostnet`; the agent container boots nested, on the
// server's network, syncs with the lab controller, and carries the firewall
// and BGP. Then an upgrade through `systemd-run --machine=hostnet`: no probe
// fails.
import t from 'tap';
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Frr, Lab, freePort, probe, probeLoop, run, waitEstablished, waitFor } from '../lab/index.js';
import { World } from '../../lab/world.js';
import { Container, SYSTEMD_CONTAINER_IMAGE, UPGRADE_IMAGE, buildImage, firstAndUpgrade } from '../../lab/container.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

void t.test('install-agent with systemd: systemd-nspawn@hostnet for real', async (t) => {
  // Both images at once (two Debian bases when neither is cached yet: ~1.3x one build, not 2x), and the lab world
  // meanwhile; whichever of this test and the container e2e runs first builds them, the other finds them cached
  // (tap's file order varies).
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const building = World.build(lab, { grpcPort: await freePort(), httpPort: await freePort(), external: ['h1'], log: (l) => t.comment(l) });
  t.teardown(async () => (await building.catch(() => undefined))?.close());
  const [[{ path: image }, { path: server }], world] = await Promise.all([Promise.all([firstAndUpgrade(), buildImage(...SYSTEMD_CONTAINER_IMAGE)]), building]);
  const h1 = world.host('h1');
  const mnt = join(lab.dir, 'mnt');
  await mkdir(mnt, { recursive: true });
  await run(['cp', image, `${image}.sha256`, join(REPO, 'packaging/install-agent'), world.caFile, mnt]);
  const srv = await Container.boot(lab, h1.ns, {
    image: server,
    binds: { [mnt]: '/mnt' },
    initArgs: ['systemd.mask=hostnet-agent.service', 'systemd.mask=frr.service'],
  });
  t.teardown(() => srv.stop());
  // As provisioning does: the controller's agent listener (on the server's management network), its CA, a one-time token.
  const token = await world.enrollmentToken('h1');
  const install = (...args: string[]) => srv.exec(['/bin/bash', '/mnt/install-agent', '--host-id', 'h1', '--controller', world.agentAddresses[0] as string,
    '--ca', '/mnt/ca.pem', '--enrollment-token', token, '--loopback-kind', 'bridge', ...args], { allowFail: true, timeoutMs: 300_000 });

  const first = await install('--image', `/mnt/${basename(image)}`);
  t.equal(first.code, 0, `install-agent ${first.stderr}`);
  t.match(first.stdout, /installed image hostnet-agent-0\.1\.0-/);
  const unit = await waitFor('systemd-nspawn@hostnet active', async () => {
    const r = await srv.exec(['systemctl', 'show', 'systemd-nspawn@hostnet.service', '-p', 'ActiveState,UnitFileState'], { allowFail: true });
    return /ActiveState=active/.test(r.stdout) ? r.stdout : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250 });
  t.match(unit, /UnitFileState=enabled/, 'systemd-nspawn@hostnet is enabled and active');
  const inMachine = (...argv: string[]) => srv.exec(['systemd-run', '--quiet', '--wait', '--pipe', '--machine=hostnet', '--', ...argv], { allowFail: true, timeoutMs: 30_000 });
  await waitFor('hostnet-agent active in the machine', async () => ((await inMachine('systemctl', 'is-active', 'hostnet-agent.service')).stdout.trim() === 'active' ? true : undefined),
    { timeoutMs: 90_000, intervalMs: 500 });
  t.pass('hostnet-agent.service is active (READY) in the hostnet machine');
  t.match((await srv.exec(['machinectl', 'list'])).stdout, /^hostnet\s+container\s+systemd-nspawn/m, 'registered with machined');

  await world.waitAllOk(60_000);
  await waitEstablished(world.torFrr[0] as Frr, [h1.torPort]);
  await waitEstablished(world.torFrr[1] as Frr, [h1.torPort]);
  await world.waitConverged();
  t.pass('the agent synced and reports ok; both ToR sessions Established');
  t.equal(await probe(world.client, 'tcp', h1.address, 443, { timeoutMs: 1000 }), 'connected', 'client -> h1:443 connects');
  t.equal(await probe(world.client, 'tcp', h1.address, 8080, { timeoutMs: 1000 }), 'timeout', 'client -> h1:8080 is dropped');
  // Listed with the server's nft (1.1.3): this machine's nft 1.0.6 crashes on tables written by the newer one.
  t.match((await srv.exec(['nft', 'list', 'tables'])).stdout, /table inet hostnet/, 'the firewall is in the server\'s own network namespace');

  const again = await install('--image', `/mnt/${basename(image)}`);
  t.match(again.stdout, /nothing changed/, 'installing again changes nothing');

  const rebuilt = (await buildImage(...UPGRADE_IMAGE)).path;
  await run(['cp', rebuilt, `${rebuilt}.sha256`, mnt]);
  const loop = probeLoop([{ from: world.client, addr: h1.address, port: 443, want: 'connected' }, { from: world.client, addr: h1.address, port: 8080, want: 'timeout' }]);
  t.teardown(() => loop.stop());
  const up = await install('--image', `/mnt/${basename(rebuilt)}`);
  t.equal(up.code, 0, `upgrade ${up.stderr}`);
  t.match(up.stdout, /agent replaced in the running container/, 'upgraded in place through systemd-run --machine=hostnet');
  await waitFor('the new agent', async () => (/0\.1\.0-upgrade\.1/.test((await inMachine('hostnet-agent', '--version')).stdout) ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 500 });
  await waitFor('active again', async () => ((await inMachine('systemctl', 'is-active', 'hostnet-agent.service')).stdout.trim() === 'active' ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 500 });
  await world.waitAllOk(60_000);
  await loop.stop();
  t.ok(loop.rounds() > 3, `${loop.rounds()} probe rounds`);
  t.same(loop.flips, [], 'no probe failed during the upgrade');
});
