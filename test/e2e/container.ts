// The agent's container image on the lab: built (cached when its inputs are
// unchanged), booted with systemd-nspawn into host h1's namespace with the
// settings of nspawn/hostnet.nspawn; systemd inside reaches running,
// hostnet-agent.service becomes active through READY, the agent syncs with
// the lab controller, and the firewall and BGP work from inside the
// container. A hung agent (SIGSTOP) is restarted by systemd's watchdog. The
// deploy-time installer (packaging/install-agent) installs it (under a test
// root: this machine's PID 1 is not systemd, so the container is booted by
// hand with the installed settings), refuses bad arguments, changes nothing
// the second time, and upgrades to a rebuilt image and back while probes run:
// no probe fails and no BGP session drops. An image with a new Debian base
// restarts the container under BGP graceful restart: no probe fails either.
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Frr, Lab, freePort, outageMeter, probe, probeLoop, run, waitFor, waitEstablished } from '../lab/index.js';
import { BgpListen, Multipath } from '../../proto/gen/hostnet/v1/resources_pb.js';
import type { HostView } from '../../controller/src/http.js';
import { CLIENT_ADDRESS, World } from '../../lab/world.js';
import { Container, SYSTEMD_CONTAINER_IMAGE, UPGRADE_IMAGE, buildImage, firstAndUpgrade } from '../../lab/container.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** The ToRs' view of their session with `port`: state and how often it was established and dropped. */
const torSessions = (world: World, port: string) => Promise.all(world.torFrr.map(async (frr) =>
  (await frr.vtyshJson<Record<string, { connectionsEstablished?: number; connectionsDropped?: number; bgpState?: string }>>(`show bgp neighbors ${port} json`))[port]));

void t.test('the agent container image in a lab host', async (t) => {
  // The new-base image (its own debootstrap) is built beside the first (the two take ~1.3x one, not 2x), and the
  // lab world meanwhile: nothing is probed or timed before all three are ready.
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const building = World.build(lab, {
    grpcPort: await freePort(), httpPort: await freePort(), external: ['h1'], log: (l) => t.comment(l),
  });
  t.teardown(async () => (await building.catch(() => undefined))?.close());
  const built = Date.now();
  const images = Promise.all([firstAndUpgrade(), buildImage(...SYSTEMD_CONTAINER_IMAGE)]).then((r) => ({ r, s: Math.round((Date.now() - built) / 1000) }));
  const [{ r: [{ path: image, log }, { path: newBase }], s: seconds }, world] = await Promise.all([images, building]);
  t.comment(`image ${image} and the new-base image (${seconds} s; ${log.includes('cached:') ? 'cached' : 'built'})`);
  t.match(image, /hostnet-agent-[\w.+-]+-[0-9a-f]{16}\.tar\.gz$/, 'a versioned artifact');
  const again = await buildImage();
  t.match(again.log, /cached: .* \(inputs unchanged\)/, 'a second build with the same inputs is skipped');
  t.equal(again.path, image, 'and names the same artifact');
  t.match((await run(['bash', '-c', 'cd "$(dirname "$1")" && sha256sum -c "$(basename "$1").sha256"', '-', image])).stdout, /OK/, 'with a checksum that verifies');
  const size = (await stat(image)).size;

  const h1 = world.host('h1');
  const installer = join(REPO, 'packaging/install-agent');
  const root = join(lab.dir, 'server');
  const install = (args: string[], env: Record<string, string> = {}) =>
    run(['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), '/bin/bash', installer, ...args], { allowFail: true, timeoutMs: 300_000 });
  // As provisioning does: a one-time token for h1, the controller's agent listener and CA.
  const token = await world.enrollmentToken('h1');
  const controller = world.agentAddresses[0] as string;
  const baseArgs = ['--image', image, '--host-id', 'h1', '--controller', controller, '--ca', world.caFile, '--enrollment-token', token, '--root', root, '--no-start'];

  await t.test('the installer refuses bad arguments, naming them, and installs nothing', async (t) => {
    const cases: [string[], RegExp][] = [
      [['--host-id', 'h1', '--controller', 'c:7443'], /--image is required/],
      [['--image', image, '--controller', 'c:7443'], /--host-id is required/],
      [['--image', image, '--host-id', 'H_1', '--controller', 'c:7443'], /--host-id "H_1" is not a lower-case hostname/],
      [['--image', image, '--host-id', 'h1'], /--controller is required/],
      [['--image', image, '--host-id', 'h1', '--controller', 'nope'], /--controller "nope" is not host:port/],
      [['--image', image, '--host-id', 'h1', '--controller', 'unix:/run/c.sock'], /--controller "unix:\/run\/c.sock" is not host:port/],
      [['--image', image, '--host-id', 'h1', '--controller', 'c:7443'], /--ca or --ca-fingerprint is required/],
      [['--image', image, '--host-id', 'h1', '--controller', 'c:7443', '--ca', world.caFile], /--enrollment-token is required: this server has no certificate yet \(hostnetctl enroll h1/],
      [['--image', image, '--host-id', 'h1', '--controller', 'c:7443', '--ca', world.caFile, '--enrollment-token', 'abc'], /--enrollment-token is not an enrollment token/],
      [['--image', image, '--host-id', 'h1', '--controller', 'c:7443', '--ca-fingerprint', 'AB:CD'], /--ca-fingerprint "AB:CD" is not a SHA-256 fingerprint/],
      [['--image', image, '--host-id', 'h1', '--controller', 'c:7443', '--cert', image], /--cert is gone: the agent makes its own key and enrolls/],
      [['--image', '/nonexistent.tar.gz', '--host-id', 'h1', '--controller', 'c:7443', '--ca', world.caFile, '--enrollment-token', token], /--image \/nonexistent\.tar\.gz: no such readable file/],
      [['--frobnicate'], /unknown argument "--frobnicate"/],
    ];
    for (const [args, message] of cases) {
      const r = await install([...args, '--root', root, '--no-start']);
      t.equal(r.code, 2, args.join(' '));
      t.match(r.stderr, message);
    }
    const noNspawn = join(lab.dir, 'path-without-nspawn');
    await mkdir(noNspawn, { recursive: true });
    await run(['ln', '-sf', '/usr/bin/id', join(noNspawn, 'id')]);
    const r = await install([...baseArgs.filter((a) => a !== '--no-start')], { PATH: noNspawn });
    t.equal(r.code, 1);
    t.match(r.stderr, /systemd-nspawn is not installed \(Debian: apt-get install systemd-container\)/);
    const wrongCa = await install(['--image', image, '--host-id', 'h1', '--controller', controller, '--ca-fingerprint', Array(32).fill('AB').join(':'),
      '--enrollment-token', token, '--root', root, '--no-start']);
    t.equal(wrongCa.code, 1, 'a CA whose fingerprint differs: refused');
    t.match(wrongCa.stderr, /the CA .* sent has the fingerprint [0-9A-F:]+, not AB:AB:.*not installing/);
    t.equal(await stat(root).then(() => 'exists', () => 'absent'), 'absent', 'nothing was installed');
  });

  const installing = Date.now();
  const first = await install(baseArgs);
  const installMs = Date.now() - installing;
  t.equal(first.code, 0, `install ${first.stderr}`);
  t.match(first.stdout, /installed image hostnet-agent-/);
  const machine = join(root, 'var/lib/machines/hostnet');
  t.equal((await readFile(join(machine, 'etc/hostnet-image'), 'utf8')).trim(), basename(image, '.tar.gz'), 'the image is /var/lib/machines/hostnet');
  t.equal(await readFile(join(root, 'etc/systemd/nspawn/hostnet.nspawn'), 'utf8'), await readFile(join(REPO, 'nspawn/hostnet.nspawn'), 'utf8'), 'the settings');
  t.match(await readFile(join(root, 'etc/hostnet/agent.yaml'), 'utf8'), `hostId: h1\ncontroller:\n  addresses: ["${controller}"]\nstateDir: /var/lib/hostnet\n`, 'agent.yaml');
  t.equal((await readFile(join(root, 'etc/hostnet/tls/enrollment-token'), 'utf8')).trim(), token, 'the enrollment token, for the agent');
  t.equal(await readFile(join(root, 'etc/hostnet/tls/ca.pem'), 'utf8'), await readFile(world.caFile, 'utf8'), 'the controller\'s CA');
  const second = await install(baseArgs);
  t.equal(second.code, 0);
  t.match(second.stdout, /already installed[\s\S]*nothing changed/, 'installing again changes nothing');

  // The agent's own options the lab needs (bridge loopbacks, short heartbeat), written as the installer would.
  await writeFile(join(root, 'etc/hostnet/agent.yaml'), world.agentConfig('h1', { stateDir: '/var/lib/hostnet' }));
  // The Bind= lines of hostnet.nspawn, from the test root instead of /.
  const binds = { [join(root, 'etc/hostnet')]: '/etc/hostnet', [join(root, 'var/lib/hostnet')]: '/var/lib/hostnet' };
  /** What the network looked like at a probe's first failure: h1's neighbours and routes back, the ToRs' routes to h1. */
  let atFlip: Promise<string> | undefined;
  const snapshot = async (): Promise<string> => {
    const h = await h1.ns.exec(['sh', '-c', 'date +%T.%N; ip neigh show; ip route get 10.200.0.1; ip -4 route show proto bgp'], { allowFail: true });
    const tors = await Promise.all(world.torFrr.map(async (f, i) => {
      const r = await world.tors[i]?.exec(['sh', '-c', `ip route show ${h1.address}`], { allowFail: true });
      const n = await f?.vtyshJson<Record<string, { bgpState?: string; gracefulRestartInfo?: unknown }>>(`show bgp neighbors ${h1.torPort} json`).catch((e: Error) => ({ error: e.message }));
      return `tor${i + 1}: ${r?.stdout.trim() ?? ''} ${JSON.stringify((n as Record<string, { bgpState?: string }>)[h1.torPort]?.bgpState ?? n)}`;
    }));
    return `h1:\n${h.stdout}\n${tors.join('\n')}`;
  };
  const probes = () => {
    atFlip = undefined;
    return probeLoop([{ from: world.client, addr: h1.address, port: 443, want: 'connected' }, { from: world.client, addr: h1.address, port: 8080, want: 'timeout' }],
      () => { atFlip = snapshot().catch((e: Error) => e.message); });
  };
  const container = await Container.boot(lab, h1.ns, {
    image, rootDir: machine, binds,
    // A short watchdog, so the SIGSTOP case below does not wait 20 s.
    files: { 'etc/systemd/system/hostnet-agent.service.d/lab.conf': '[Service]\nWatchdogSec=4s\n' },
  });
  let current = container;
  /** On a failed subtest: what the agent and FRR said, and what the kernel has, for whoever reads the failure. */
  const explainFailure = (t: Test) => t.teardown(async () => {
    if (t.passing() && !process.env.HOSTNET_TEST_HOLD_ALWAYS) return;
    const inside = await current.exec(['sh', '-c', [
      'journalctl --no-pager -n 120 -o short-precise -u hostnet-agent -u frr || journalctl --no-pager -n 120',
      'echo "--- FRR (sources, route-maps)"', 'vtysh -c "show running-config" | grep -E "protocol|set src|route-map HOSTNET-SRC"',
      'vtysh -c "show route-map" | grep -E -A3 "HOSTNET-SRC|zebra"', 'vtysh -c "show ipv6 route bgp"',
    ].join('; ')], { allowFail: true }).catch((e: Error) => ({ stdout: e.message }));
    const kernel = await h1.ns.exec(['sh', '-c', 'ip addr show dev vni0; ip -6 route; ip route; ss -Hltnp']).catch((e: Error) => ({ stdout: e.message }));
    t.comment(`journal (agent, FRR):\n${inside.stdout}\nkernel:\n${kernel.stdout}`);
    const hold = Number(process.env.HOSTNET_TEST_HOLD_MS ?? 0);
    if (hold > 0) {
      // A debugging aid: the failed state (or with HOSTNET_TEST_HOLD_ALWAYS any state) stays up for a look inside
      // (until HOLD_MS pass or the file /tmp/hostnet-test-release appears), then the teardown removes it as always.
      process.stderr.write(`holding the failed container ${hold} ms: ${(await current.nsenter()).join(' ')} ...\n`);
      await waitFor('the hold to end', async () => (existsSync('/tmp/hostnet-test-release') ? true : undefined), { timeoutMs: hold, intervalMs: 500 })
        .catch(() => undefined);
    }
  });
  t.teardown(() => container.stop());
  t.pass('systemd in the container reached running');

  const agent = await waitFor('hostnet-agent.service active', async () => {
    const u = await container.unit('hostnet-agent.service', ['ActiveState', 'SubState', 'Type', 'MainPID', 'NRestarts']);
    return u.ActiveState === 'active' ? u : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200 });
  const readyMs = Date.now() - container.startedAt;
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

  await t.test('bgpd killed in the container: watchfrr starts it again, the sessions come back, nobody acts', async (t) => {
    explainFailure(t);
    const before = await torSessions(world, h1.torPort);
    const meter = outageMeter(world.client, h1.address, 443);
    t.teardown(() => meter.stop());
    await container.exec(['sh', '-c', 'kill -KILL "$(cat /run/frr/bgpd.pid)"']);
    await waitFor('both sessions re-established', async () => {
      const now = await torSessions(world, h1.torPort);
      return now.every((n, i) => n?.bgpState === 'Established' && (n.connectionsEstablished ?? 0) > (before[i]?.connectionsEstablished ?? 0)) ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    await world.waitAllOk(30_000);
    await meter.stop();
    t.comment(`worst outage client -> h1:443 while bgpd restarted: ${meter.worst()} ms`);
    t.ok(meter.worst() < 5000, `traffic kept flowing or came back within a few seconds (${meter.worst()} ms)`);
  });

  await t.test('a CaaS host in the container: listen port changes restart bgpd with its new start options, BIRD beside it; traffic back within seconds', async (t) => {
    explainFailure(t);
    const { client: admin, metadata } = world.admin();
    const standard = (await admin.getNetworkCatalog({ name: 'standard' }, { metadata })).networkCatalog;
    if (!standard) throw new Error('no standard catalog');
    const meter = outageMeter(world.client, h1.address, 443);
    t.teardown(() => meter.stop());
    const moveTo = async (catalog: string, port: number) => {
      const host = (await admin.getHost({ id: 'h1' }, { metadata })).host;
      if (!host) throw new Error('no h1');
      await admin.updateHost({ host: { ...host, catalog } }, { metadata });
      await waitFor(`bgpd on ${port} in the container`, async () => {
        const ss = (await h1.ns.exec(['ss', '-Hltnp'])).stdout;
        return new RegExp(`:${port}\\s.*"bgpd"`).test(ss) ? true : undefined;
      }, { timeoutMs: 60_000, intervalMs: 250 });
      await waitEstablished(world.torFrr[0] as Frr, [h1.torPort]);
      await waitEstablished(world.torFrr[1] as Frr, [h1.torPort]);
      await world.waitAllOk(60_000);
    };
    // h1 becomes a CaaS host: its catalog's bgpd listens on 20179, active-standby.
    await admin.apply({ resources: [{ kind: { case: 'networkCatalog', value: {
      ...standard, name: 'caas', bgpListen: BgpListen.PORT_20179, multipath: Multipath.ACTIVE_STANDBY, revision: 0n,
    } } }] }, { metadata });
    await moveTo('caas', 20179);
    t.match((await container.exec(['cat', '/etc/frr/daemons'])).stdout, /^bgpd_options="-A 127\.0\.0\.1 -p 20179"$/m, 'the agent wrote the new port into /etc/frr/daemons');
    const restarted = await waitFor('the agent to report bgpd-restarted', async () => (await world.api<HostView>('/api/v1/hosts/h1')).events.find((e) => e.kind === 'bgpd-restarted'), { timeoutMs: 30_000 });
    t.match(restarted.detail, /listens? on port 20179/, 'and said bgpd was restarted for the new port');
    // Whoever started it (watchfrr, or the agent when watchfrr held back), bgpd is FRR's, not the agent's: stopping the agent must not stop it.
    t.match((await container.exec(['sh', '-c', 'cat /proc/"$(cat /run/frr/bgpd.pid)"/cgroup'])).stdout, /frr\.service/, 'the new bgpd runs in FRR\'s cgroup');
    // Calico's BIRD on the server, beside the container: it owns 179 and brings container routes.
    const calico = await world.startCalico('h1', ['10.244.1.0/26']);
    const ss = (await h1.ns.exec(['ss', '-Hltnp'])).stdout;
    t.match(ss, /:179\s.*"bird"/, 'BIRD listens on 179 beside the container\'s bgpd');
    t.match(ss, /:20179\s.*"bgpd"/);
    for (const [i, tor] of world.torFrr.entries()) {
      const fromH1 = await tor.vtyshJson<{ routes?: Record<string, unknown> }>(`show bgp ipv4 unicast neighbors ${h1.torPort} routes json`);
      t.same(Object.keys(fromH1.routes ?? {}), [`${h1.address}/32`], `tor${i + 1} learns only h1's /32, no container route`);
    }
    await calico.stop();
    await moveTo('standard', 179);
    await meter.stop();
    // The ToRs keep the host's routes (graceful restart), but the host's own zebra drops the routes
    // it learned from them when the new bgpd connects, until it learns them again: about a second here;
    // in CI the new bgpd's first sessions failed and came up seconds later (5-6.5 s in all, docs/routing.md),
    // which is FRR's start and not yet understood. 8 s still catches a restart that waits for watchfrr's
    // poll or hold-back (9.4 s in CI when the agent waited 5 s for it).
    t.comment(`worst outage client -> h1:443 over two bgpd restarts for a new port: ${meter.worst()} ms`);
    // Who started bgpd each time (watchfrr, or the agent when watchfrr held back) decides how long it was gone.
    for (const e of (await world.api<HostView>('/api/v1/hosts/h1')).events.filter((x) => x.kind === 'bgpd-restarted')) t.comment(`${e.time ?? ''}: ${e.detail}`);
    t.ok(meter.worst() < 8000, `traffic came back within seconds of each restart (${meter.worst()} ms)`);
  });

  await t.test('upgrade to a rebuilt image and back while probes run: no probe fails, no session drops', async (t) => {
    explainFailure(t);
    const rebuilt = (await buildImage(...UPGRADE_IMAGE)).path;
    t.match(rebuilt, /hostnet-agent-0\.1\.0-upgrade\.1-[0-9a-f]{16}\.tar\.gz$/, 'a rebuilt image with a new version');
    const before = await torSessions(world, h1.torPort);
    const loop = probes();
    t.teardown(() => loop.stop());
    const exec = (await container.nsenter()).join(' ');
    const mainPid = (await container.unit('hostnet-agent.service', ['MainPID'])).MainPID;
    // No token now: the server has its certificate. The CA by fingerprint, fetched from the controller.
    const fingerprint = new X509Certificate(await readFile(world.caFile)).fingerprint256;
    const up = await install(['--image', rebuilt, '--host-id', 'h1', '--controller', controller, '--ca-fingerprint', fingerprint, '--root', root, '--no-start'],
      { HOSTNET_CONTAINER_EXEC: exec });
    t.equal(up.code, 0, `upgrade ${up.stderr}`);
    t.match(up.stdout, /agent replaced in the running container; hostnet-agent\.service restarted, FRR untouched/);
    const upgraded = await waitFor('the new agent active', async () => {
      const u = await container.unit('hostnet-agent.service', ['MainPID', 'ActiveState']);
      return u.ActiveState === 'active' && u.MainPID !== mainPid ? u : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    t.ok(upgraded, 'a new agent process is active (READY)');
    t.match((await container.exec(['hostnet-agent', '--version'])).stdout, /0\.1\.0-upgrade\.1/, 'running the new version');
    await world.waitAllOk(30_000);
    const back = await install(['--rollback', '--root', root], { HOSTNET_CONTAINER_EXEC: exec });
    t.equal(back.code, 0, `rollback ${back.stderr}`);
    t.match(back.stdout, /rolling back to hostnet-agent-0\.1\.0-[0-9a-f]{16}/);
    await waitFor('the previous agent active', async () => {
      const v = await container.exec(['hostnet-agent', '--version'], { allowFail: true });
      const u = await container.unit('hostnet-agent.service', ['ActiveState']);
      return /^0\.1\.0\s*$/.test(v.stdout) && u.ActiveState === 'active' ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    await world.waitAllOk(30_000);
    await new Promise((r) => setTimeout(r, 1000));
    await loop.stop();
    const after = await torSessions(world, h1.torPort);
    t.ok(loop.rounds() > 5, `${loop.rounds()} probe rounds during upgrade and rollback`);
    t.same(loop.flips, [], 'no probe failed');
    t.same(after.map((n) => [n?.bgpState, n?.connectionsEstablished, n?.connectionsDropped]),
      before.map((n) => [n?.bgpState, n?.connectionsEstablished, n?.connectionsDropped]), 'both ToR sessions stayed up: no drop, no re-establishment');
  });

  const unpacked = (await run(['du', '-sm', container.root])).stdout.split('\t')[0] ?? '?';

  await t.test('a new Debian base: the container restarts with graceful restart while probes run: no probe fails', async (t) => {
    const before = await torSessions(world, h1.torPort);
    const loop = probes();
    t.teardown(() => loop.stop());
    // What h1's kernel does with its route to the client through the restart, as `ip monitor` sees it.
    const monitor = h1.ns.spawn('route-monitor', ['ip', '-ts', 'monitor', 'route']);
    let routeEvents = '';
    monitor.child.stdout?.on('data', (d: Buffer) => { routeEvents += d.toString(); });
    t.teardown(() => monitor.stop());
    const exec = (await container.nsenter()).join(' ');
    const up = await install(['--image', newBase, '--host-id', 'h1', '--controller', controller, '--ca', world.caFile, '--root', root, '--no-start'], { HOSTNET_CONTAINER_EXEC: exec });
    t.equal(up.code, 0, `install ${up.stderr}`);
    t.match(up.stdout, /new Debian base: stopping FRR without withdrawing routes/);
    // frr.service has Restart=always (RestartSec=5): an old FRR started again
    // would be stopped cleanly by the container's shutdown and withdraw the routes.
    await new Promise((r) => setTimeout(r, 6000));
    t.match(await container.unit('frr.service', ['ActiveState', 'NRestarts']), { ActiveState: /^(inactive|failed)$/, NRestarts: '0' },
      'the killed FRR is not started again in the old container');
    // What systemd-nspawn@hostnet's restart does: power off, boot the new tree.
    await container.stop();
    const next = await Container.boot(lab, h1.ns, { image: newBase, rootDir: machine, binds });
    current = next;
    t.teardown(() => next.stop());
    explainFailure(t); // after next.stop(): teardowns run last-in first-out
    await waitFor('the new agent active', async () => ((await next.unit('hostnet-agent.service', ['ActiveState'])).ActiveState === 'active' ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 200 });
    t.match((await next.exec(['hostnet-agent', '--version'])).stdout, /0\.2\.0-newbase\.1/, 'the new image runs');
    await waitFor('both sessions re-established', async () => {
      const now = await torSessions(world, h1.torPort);
      return now.every((n, i) => (n?.connectionsEstablished ?? 0) > (before[i]?.connectionsEstablished ?? 0)) ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    await waitEstablished(world.torFrr[0] as Frr, [h1.torPort]);
    await waitEstablished(world.torFrr[1] as Frr, [h1.torPort]);
    await world.waitAllOk(60_000);
    const repairs = (await next.exec(['sh', '-c', 'journalctl --no-pager -o cat -u hostnet-agent | grep -E "routes-reinstalled|frr-config-restored" || true'])).stdout.trim();
    t.comment(`the agent's repairs after the restart:\n${repairs || '(none)'}`);
    await new Promise((r) => setTimeout(r, 1000));
    await loop.stop();
    await monitor.stop();
    // The new zebra keeps the routes the old FRR left (-K 120) until BGP brings them again. In about one
    // FRR start in eight it deletes them as frr.conf arrives: FRR 10.3 hands zebra `ip protocol bgp
    // route-map HOSTNET-SRC` before the route-map, and a route-map zebra does not know yet denies
    // (docs/packaging.md, "Known problem"). With `zebra route-map delay-timer 0` zebra puts them back
    // as soon as the route-map arrives (20-55 ms), not 1-5 s later. This names that failure apart
    // from others that lose probes.
    const clientRoute = routeEvents.split('\n').filter((l) => l.split(/[\s\]]+/).includes(CLIENT_ADDRESS));
    t.comment(`h1's kernel, its route to the client through the restart:\n${clientRoute.join('\n') || '(no change)'}`);
    const at = (l: string | undefined): number => Date.parse(/^\[([^\]]+)\]/.exec(l ?? '')?.[1] ?? '');
    const gaps = clientRoute.flatMap((l, i) => (l.includes('Deleted') ? [at(clientRoute[i + 1]) - at(l)] : []));
    t.ok(gaps.every((ms) => ms < 500), `h1's kernel never lost its route to the client for long (${gaps.length === 0 ? 'never lost' : `lost for ${gaps.map((g) => `${g} ms`).join(', ')}`})`);
    t.ok(loop.rounds() > 5, `${loop.rounds()} probe rounds through the restart`);
    if (atFlip) t.comment(`at the first failed probe:\n${await atFlip}`);
    t.same(loop.flips, [], 'no probe failed: the default deny held and the allowed traffic kept flowing');
    t.equal(await probe(world.client, 'tcp', h1.address, 443, { timeoutMs: 1000 }), 'connected', 'traffic flows again afterwards');
  });
  t.comment(`image ${(size / 1e6).toFixed(0)} MB compressed, ${unpacked} MB unpacked (first install-agent run ${installMs} ms); `
    + `systemd-nspawn start to hostnet-agent.service active (READY) ${readyMs} ms`);
});
