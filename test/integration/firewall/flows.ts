// The flow matrix: each cell is a real probe from a client namespace to the
// host namespace whose firewall the agent programmed. Then the same matrix
// after deltas (an object prefix added over netlink; a rule change).
import t, { type Test } from 'tap';
import { create } from '@bufbuild/protobuf';
import { Lab, listen, ping, probe, type Netns, type ProbeResult } from '../../lab/index.js';
import { FirewallClient, tableText } from '../../fixtures/drivers.js';
import { FirewallPolicySchema } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { FirewallDeltaSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { Action, Protocol } from '../../../proto/gen/hostnet/v1/resources_pb.js';

const HOST_A = '10.1.0.10';
const HOST_B = '10.1.0.20';
const HOST_V6 = '2001:db8:1::10';

interface Client { ns: Netns; v4: string; v6: string }

/** A host namespace with one link per client; routes both ways, IPv6 via link-locals. */
async function topology(lab: Lab): Promise<{ host: Netns; clients: Record<string, Client> }> {
  const host = await lab.netns('host');
  for (const a of [`${HOST_A}/32`, `${HOST_B}/32`, `${HOST_V6}/128`]) await host.addAddress('lo', a);
  const spec = { good: ['10.9.0.5', '2001:db8:9::5'], other: ['10.8.0.5', '2001:db8:8::5'], bad: ['10.9.1.66', '2001:db8:7::66'] };
  const clients: Record<string, Client> = {};
  let i = 1;
  for (const [name, [v4, v6]] of Object.entries(spec) as [string, [string, string]][]) {
    const ns = await lab.netns(name);
    const hostIf = `eth${i++}`;
    await lab.link(host, hostIf, ns, 'eth0');
    await ns.addAddress('eth0', `${v4}/32`);
    await ns.addAddress('eth0', `${v6}/128`);
    await ns.route('10.1.0.0/24', ['dev', 'eth0']);
    await host.route(`${v4}/32`, ['dev', hostIf]);
    await ns.route('2001:db8:1::/64', ['via', await host.linkLocal(hostIf), 'dev', 'eth0']);
    await host.route(`${v6}/128`, ['via', await ns.linkLocal('eth0'), 'dev', hostIf]);
    clients[name] = { ns, v4, v6 };
  }
  return { host, clients };
}

const policy = create(FirewallPolicySchema, {
  version: 'flows-1',
  hostId: 'host-a',
  hostAddresses: [`${HOST_A}/32`, `${HOST_B}/32`, `${HOST_V6}/128`],
  objects: [{ id: 'web-clients', prefixes: ['10.9.0.0/24', '10.9.1.0/24', '2001:db8:9::/48'] }],
  rules: [
    { id: 'deny-bad', action: Action.DENY, source: { kind: { case: 'prefixes', value: { prefixes: ['10.9.1.66/32'] } } }, protocol: Protocol.TCP, ports: [{ first: 80 }] },
    { id: 'web', action: Action.ALLOW, source: { kind: { case: 'objectId', value: 'web-clients' } }, protocol: Protocol.TCP, ports: [{ first: 80 }] },
    { id: 'admin-b', action: Action.ALLOW, source: { kind: { case: 'objectId', value: 'web-clients' } }, destinations: [`${HOST_B}/32`], protocol: Protocol.TCP, ports: [{ first: 8080 }] },
    { id: 'dns', action: Action.ALLOW, source: { kind: { case: 'prefixes', value: { prefixes: ['10.8.0.0/16'] } } }, protocol: Protocol.UDP, ports: [{ first: 53 }] },
    { id: 'ping', action: Action.ALLOW, source: { kind: { case: 'any', value: true } }, protocol: Protocol.ICMP },
  ],
  failsafe: { bgpPort: 179, uplinks: ['eth1', 'eth2', 'eth3'] },
});

type Cell = [client: string, transport: 'tcp' | 'udp', dest: 'A' | 'B' | 'V6', port: number, expect: ProbeResult, why: string];

async function matrix(t: Test, clients: Record<string, Client>, cells: Cell[]): Promise<void> {
  const results = await Promise.all(cells.map(async ([c, transport, dest, port]) => {
    const client = clients[c] as Client;
    const addr = dest === 'A' ? HOST_A : dest === 'B' ? HOST_B : HOST_V6;
    return probe(client.ns, transport, addr, port, { timeoutMs: 700 });
  }));
  cells.forEach(([c, transport, dest, port, expect, why], i) => {
    t.equal(results[i], expect, `${c} -> ${dest} ${transport}/${port}: ${expect} (${why})`);
  });
}

void t.test('flow matrix through the agent\'s firewall', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const { host, clients } = await topology(lab);
  for (const port of [80, 81, 8080]) await listen(host, 'tcp', '::', port);
  for (const port of [53, 54]) await listen(host, 'udp', '::', port);

  // Without the firewall everything connects: the probes below are not blocked by the lab itself.
  t.equal(await probe((clients.other as Client).ns, 'tcp', HOST_A, 81, { timeoutMs: 700 }), 'connected', 'open before the policy');

  const fw = FirewallClient.start(host);
  t.teardown(() => fw.stop());
  const applied = await fw.policy(policy);
  t.equal(applied.ok, true, `policy applied: ${applied.error?.message ?? ''}`);

  await matrix(t, clients, [
    ['good', 'tcp', 'A', 80, 'connected', 'source in object, allowed port'],
    ['good', 'tcp', 'A', 81, 'timeout', 'same source, other port'],
    ['other', 'tcp', 'A', 80, 'timeout', 'source not in the object'],
    ['bad', 'tcp', 'A', 80, 'timeout', 'deny before allow wins although the object contains it'],
    ['good', 'tcp', 'B', 8080, 'connected', 'host-specific rule, its host'],
    ['good', 'tcp', 'A', 8080, 'timeout', 'host-specific rule, another address'],
    ['good', 'tcp', 'B', 80, 'connected', 'subnet-wide rule, every address'],
    ['other', 'udp', 'A', 53, 'connected', 'UDP allowed by prefix'],
    ['other', 'udp', 'A', 54, 'timeout', 'UDP other port'],
    ['good', 'udp', 'A', 53, 'timeout', 'UDP rule is for another source'],
    ['good', 'tcp', 'V6', 80, 'connected', 'IPv6 source in the object'],
    ['other', 'tcp', 'V6', 80, 'timeout', 'IPv6 source not in the object'],
  ]);
  t.ok(await ping((clients.other as Client).ns, HOST_A), 'ICMP echo allowed from anywhere');
  t.notOk(await ping((clients.other as Client).ns, HOST_V6), 'ICMPv6 echo is not (the rule is ICMP only), while ND works');

  // An object prefix added by delta: element change over netlink, takes effect at once.
  const before = await tableText(host);
  const d1 = await fw.delta(create(FirewallDeltaSchema, {
    baseVersion: 'flows-1', version: 'flows-2',
    objectChanges: [{ id: 'web-clients', added: ['10.8.0.0/24'] }],
  }));
  t.match(d1, { ok: true, result: { via: 'netlink', version: 'flows-2' } }, 'a prefix delta goes over netlink');
  await matrix(t, clients, [['other', 'tcp', 'A', 80, 'connected', 'its prefix was added to the object']]);
  t.not(await tableText(host), before, 'the set changed');

  // A rule removed by delta: the ACL chain is rewritten.
  const d2 = await fw.delta(create(FirewallDeltaSchema, {
    baseVersion: 'flows-2', version: 'flows-3', rules: { rules: policy.rules.filter((r) => r.id !== 'deny-bad') },
  }));
  t.match(d2, { ok: true, result: { via: 'nft' } });
  await matrix(t, clients, [['bad', 'tcp', 'A', 80, 'connected', 'the deny rule is gone; the object allows it']]);
});
