// The routing one-shot commands as a user runs them in a host namespace.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Frr, Lab } from '../../lab/index.js';
import { INTENT_DIR, frrGoldenPath } from '../../fixtures/goldens.js';
import { tempDir } from '../../fixtures/temp.js';

const MAIN = fileURLToPath(new URL('../../../agent/src/main.ts', import.meta.url));
const agent = (...args: string[]): string[] => [process.execPath, '--import=tsx', MAIN, ...args];

void t.test('hostnet-agent routing render / apply', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const host = await lab.netns('host');
  const peer = await lab.netns('peer');
  await lab.link(host, 'eth0', peer, 'p0');
  await lab.link(host, 'eth1', peer, 'p1');
  const intent = join(INTENT_DIR, 'ecmp.json');

  // The goldens are for a server with forwarding off (Linux's default); the lab turns it on.
  await host.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=0', 'net.ipv6.conf.all.forwarding=0']);
  const render = await host.exec(agent('routing', 'render', '--intent', intent));
  t.equal(render.stdout, readFileSync(frrGoldenPath('ecmp'), 'utf8'), 'render prints the golden frr.conf');
  await host.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  t.notMatch((await host.exec(agent('routing', 'render', '--intent', intent))).stdout, /^no ip forwarding$/m,
    'with forwarding on, the text leaves it on: forwarding is the host\'s, never changed through FRR');
  await host.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=0']);

  const frr = await Frr.start(host, { config: 'frr defaults datacenter\n', bgpPort: 0 });
  await writeFile(join(frr.dir, 'vtysh.conf'), '');
  const apply = await host.exec(agent('routing', 'apply', '--intent', intent, '--frr-dir', frr.dir, '--loopback-kind', 'bridge'));
  t.match(apply.stdout, /^applied routing intent ecmp-1 in \d+ ms; FRR: \d+ lines removed, \d+ added; loopbacks created vni0, added vni0 10\.1\.0\.10\/32\n$/);
  t.match(await frr.vtysh('show running-config'), /neighbor eth0 interface peer-group private/);

  const dir = await tempDir(t, 'hostnet-rtcli');
  const bad = join(dir, 'bad.json');
  const doc = JSON.parse(readFileSync(intent, 'utf8')) as { asn: number };
  doc.asn = 0;
  await writeFile(bad, JSON.stringify(doc));
  const before = await frr.vtysh('show running-config');
  const refused = await host.exec(agent('routing', 'apply', '--intent', bad, '--frr-dir', frr.dir, '--loopback-kind', 'bridge'), { allowFail: true });
  t.equal(refused.code, 2);
  t.match(refused.stderr, /invalid routing intent: asn: 0 is not an ASN/);
  t.equal(await frr.vtysh('show running-config'), before, 'FRR untouched');
  const usage = await host.exec(agent('routing', 'apply', '--intent', intent, '--loopback-kind', 'veth'), { allowFail: true });
  t.equal(usage.code, 2);
  t.match(usage.stderr, /--loopback-kind must be dummy or bridge/);
});
