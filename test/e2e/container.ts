// The agent's container image on the lab: built (cached when its inputs are
// unchanged), booted with systemd-nspawn into host h1's namespace with the
// settings of nspawn/hostnet.nspawn; systemd inside reaches running,
// hostnet-agent.service becomes active through READY, the agent syncs with
// the lab controller, and the firewall and BGP work from inside the
// container. A hung agent (SIGSTOP) is restarted by systemd's watchdog.
import t from 'tap';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Frr, Lab, freePort, probe, run, waitFor, waitEstablished } from '../lab/index.js';
import { World } from '../../lab/world.js';
import { Container } from '../../lab/container.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

interface HostView { id: string; status: string; connected: boolean; appliedVersion: string; desiredVersion: string }

void t.test('the agent container image in a lab host', async (t) => {
  const built = Date.now();
  const { stdout, stderr } = await run(['bash', join(REPO, 'packaging/build-image')], { timeoutMs: 900_000 });
  const image = stdout.trim().split('\n').pop() ?? '';
  t.comment(`image ${image} (${Math.round((Date.now() - built) / 1000)} s; ${stderr.includes('cached:') ? 'cached' : 'built'})`);
  t.match(image, /hostnet-agent-[\w.+-]+-[0-9a-f]{16}\.tar\.gz$/, 'a versioned artifact');
  const again = await run(['bash', join(REPO, 'packaging/build-image')], { timeoutMs: 300_000 });
  t.match(again.stderr, /cached: .* \(inputs unchanged\)/, 'a second build with the same inputs is skipped');
  t.equal(again.stdout.trim().split('\n').pop(), image, 'and names the same artifact');
  t.match((await run(['bash', '-c', 'cd "$(dirname "$1")" && sha256sum -c "$(basename "$1").sha256"', '-', image])).stdout, /OK/, 'with a checksum that verifies');
  const size = (await stat(image)).size;

  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const world = await World.build(lab, {
    grpcPort: await freePort(), httpPort: await freePort(), external: ['h1'], log: (l) => t.comment(l),
  });
  t.teardown(() => world.close());
  const h1 = world.host('h1');
  const etc = join(lab.dir, 'c-etc-hostnet');
  const state = join(lab.dir, 'c-var-lib-hostnet');
  await mkdir(etc, { recursive: true });
  await mkdir(state, { recursive: true, mode: 0o700 });
  await writeFile(join(etc, 'agent.yaml'), world.agentConfig('h1', { socket: '/run/hostnet-lab/controller.sock', stateDir: '/var/lib/hostnet' }));
  const unpacking = Date.now();
  const container = await Container.boot(lab, h1.ns, {
    image,
    binds: { [etc]: '/etc/hostnet', [state]: '/var/lib/hostnet', [world.agentSocket]: '/run/hostnet-lab/controller.sock' },
    // A short watchdog, so the SIGSTOP case below does not wait 20 s.
    files: { 'etc/systemd/system/hostnet-agent.service.d/lab.conf': '[Service]\nWatchdogSec=4s\n' },
  });
  t.teardown(() => container.stop());
  t.pass('systemd in the container reached running');

  const agent = await waitFor('hostnet-agent.service active', async () => {
    const u = await container.unit('hostnet-agent.service', ['ActiveState', 'SubState', 'Type', 'MainPID', 'NRestarts']);
    return u.ActiveState === 'active' ? u : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200 });
  const readyMs = Date.now() - container.startedAt;
  const unpackMs = container.startedAt - unpacking;
  t.match(agent, { Type: 'notify', SubState: 'running' }, 'hostnet-agent.service is active (Type=notify: it sent READY=1)');
  t.match(await container.unit('frr.service', ['ActiveState']), { ActiveState: 'active' }, 'frr.service runs after it');

  await world.waitAllOk(60_000);
  const view = (await world.api<HostView[]>('/api/v1/hosts')).find((h) => h.id === 'h1');
  t.match(view, { status: 'ok', connected: true }, 'the containerised agent syncs with the lab controller and reports ok');
  t.equal(view?.appliedVersion, view?.desiredVersion, 'and has applied what the controller wants');
  await waitEstablished(world.torFrr[0] as Frr, [h1.torPort]);
  await waitEstablished(world.torFrr[1] as Frr, [h1.torPort]);
  t.pass('both ToRs have an Established session with the container\'s bgpd');
  await world.waitConverged();
  t.equal(await probe(world.client, 'tcp', h1.address, 443, { timeoutMs: 1000 }), 'connected', 'client -> h1:443 connects (ACL allows it)');
  t.equal(await probe(world.client, 'tcp', h1.address, 8080, { timeoutMs: 1000 }), 'timeout', 'client -> h1:8080 is dropped (default deny)');
  const ruleset = (await container.exec(['nft', 'list', 'table', 'inet', 'hostnet'])).stdout;
  t.match(ruleset, /rule:https/, 'the container\'s nft sees the table the agent applied');

  await t.test('a hung agent is restarted by the watchdog', async (t) => {
    const before = await container.unit('hostnet-agent.service', ['MainPID', 'NRestarts']);
    await container.exec(['sh', '-c', `kill -STOP ${before.MainPID ?? ''}`]);
    const after = await waitFor('a restart', async () => {
      const u = await container.unit('hostnet-agent.service', ['MainPID', 'NRestarts', 'ActiveState']);
      return Number(u.NRestarts) > Number(before.NRestarts) && u.ActiveState === 'active' ? u : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    t.not(after.MainPID, before.MainPID, `a new agent process (${before.MainPID} -> ${after.MainPID})`);
    const journal = (await container.exec(['journalctl', '-u', 'hostnet-agent.service', '--no-pager', '-q'], { allowFail: true })).stdout;
    t.match(journal, /[Ww]atchdog timeout/, 'systemd says why');
    t.equal(await probe(world.client, 'tcp', h1.address, 443, { timeoutMs: 1000 }), 'connected', 'the rules stayed in force');
    t.equal(await probe(world.client, 'tcp', h1.address, 8080, { timeoutMs: 1000 }), 'timeout');
  });

  const unpacked = (await run(['du', '-sm', container.root])).stdout.split('\t')[0] ?? '?';
  t.comment(`image ${(size / 1e6).toFixed(0)} MB compressed, ${unpacked} MB unpacked (unpacking ${unpackMs} ms); `
    + `systemd-nspawn start to hostnet-agent.service active (READY) ${readyMs} ms`);
});
