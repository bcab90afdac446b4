// Open flows against a new policy: parsed from conntrack's extended output,
// evaluated the way the ruleset would (management and BGP failsafes, the ACL
// in order, first match, default drop), and only the ones no longer admitted
// are deleted, each by its exact tuple.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { type Conntrack, type Flow, admits, parseConntrack, revokeFlows } from '../../../agent/src/firewall/conntrack.js';
import { buildModel } from '../../../agent/src/firewall/model.js';
import { validatePolicy } from '../../../agent/src/firewall/policy.js';
import { FirewallPolicySchema } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { Action, Protocol } from '../../../proto/gen/hostnet/v1/resources_pb.js';

const LISTING = [
  'ipv4     2 tcp      6 431999 ESTABLISHED src=10.200.0.1 dst=10.1.0.1 sport=40000 dport=9000 src=10.1.0.1 dst=10.200.0.1 sport=9000 dport=40000 [ASSURED] mark=0 use=1',
  'ipv4     2 udp      17 29 src=10.200.0.1 dst=10.1.0.1 sport=50000 dport=9001 src=10.1.0.1 dst=10.200.0.1 sport=9001 dport=50000 [ASSURED] mark=0 use=1',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=10.200.0.1 dst=10.1.0.1 sport=40001 dport=443 src=10.1.0.1 dst=10.200.0.1 sport=443 dport=40001 [ASSURED] mark=0 use=1',
  'ipv4     2 icmp     1 29 src=10.200.0.1 dst=10.1.0.1 type=8 code=0 id=7 src=10.1.0.1 dst=10.200.0.1 type=0 code=0 id=7 mark=0 use=1',
  'ipv6     10 tcp      6 431999 ESTABLISHED src=fe80::1 dst=2001:db8:a::1 sport=33000 dport=179 src=2001:db8:a::1 dst=fe80::1 sport=179 dport=33000 [ASSURED] mark=0 use=1',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.7 dst=10.1.0.1 sport=40002 dport=22 src=10.1.0.1 dst=192.0.2.7 sport=22 dport=40002 [ASSURED] mark=0 use=1',
  'conntrack v1.4.7 (conntrack-tools): 6 flow entries have been shown.',
].join('\n');

const model = () => buildModel(validatePolicy(create(FirewallPolicySchema, {
  version: 'p2',
  objects: [{ id: 'clients', prefixes: ['10.200.0.0/24'] }],
  rules: [
    { id: 'https', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 443 }], source: { kind: { case: 'objectId', value: 'clients' } } },
    { id: 'no-icmp', action: Action.DENY, protocol: Protocol.ICMP, source: { kind: { case: 'any', value: true } } },
  ],
  failsafe: { bgpPort: 179, uplinks: ['eth0', 'eth1'], managementPrefixes: ['192.0.2.0/24'] },
}), []));

void t.test('conntrack entries parse by their original direction', async (t) => {
  const flows = parseConntrack(LISTING);
  t.equal(flows.length, 6);
  t.same(flows[0], { family: 4, proto: 'tcp', src: '10.200.0.1', dst: '10.1.0.1', sport: 40000, dport: 9000 });
  t.same(flows[3], { family: 4, proto: 'icmp', src: '10.200.0.1', dst: '10.1.0.1', sport: undefined, dport: undefined });
});

void t.test('each flow is judged as the new ruleset would judge its first packet', async (t) => {
  const m = model();
  const verdicts = parseConntrack(LISTING).map((f) => `${f.proto} ${f.dport ?? '-'}: ${admits(m, f) ? 'kept' : 'cut'}`);
  t.same(verdicts, ['tcp 9000: cut', 'udp 9001: cut', 'tcp 443: kept', 'icmp -: cut', 'tcp 179: kept', 'tcp 22: kept'],
    'the ACL allows 443 from the clients; BGP from link-local and the management prefix are failsafes; the rest is the default drop');
});

void t.test('revoking deletes exactly the flows no longer admitted', async (t) => {
  const removed: Flow[] = [];
  const ct: Conntrack = {
    async localAddresses() { return ['10.1.0.1', '2001:db8:a::1']; },
    async into(address) { return parseConntrack(LISTING).filter((f) => f.dst === address); },
    async remove(f) { removed.push(f); return f.dst === '10.1.0.1'; },
  };
  const { checked, revoked: cut } = await revokeFlows(ct, model(), async () => undefined);
  t.equal(checked, 6, 'every flow into the host looked at');
  t.same(cut.map((f) => `${f.proto} ${f.src}:${f.sport ?? ''} -> ${f.dst}:${f.dport ?? ''}`),
    ['tcp 10.200.0.1:40000 -> 10.1.0.1:9000', 'udp 10.200.0.1:50000 -> 10.1.0.1:9001', 'icmp 10.200.0.1: -> 10.1.0.1:']);
  t.same(removed.slice(0, 3), cut, 'one delete per flow');
  t.same(removed.slice(3).map((f) => `${f.proto} ${f.src}:${f.sport ?? ''} -> ${f.dst}:${f.dport ?? ''}`),
    ['tcp 10.1.0.1:9000 -> 10.200.0.1:40000', 'udp 10.1.0.1:9001 -> 10.200.0.1:50000'],
    'then the flows with ports once more from the host\'s side (none found there: done), never the ICMP one');
});

void t.test('a cut flow whose reply was on its way is cut again from the host\'s side', async (t) => {
  // The kernel made a new entry from h1's reply to the UDP stream as its entry went; the next look finds none.
  let resurrected = 2;
  const removed: string[] = [];
  const ct: Conntrack = {
    async localAddresses() { return ['10.1.0.1']; },
    async into(address) { return parseConntrack(LISTING).filter((f) => f.dst === address && f.proto === 'udp'); },
    async remove(f) {
      removed.push(`${f.src}:${f.sport ?? ''} -> ${f.dst}:${f.dport ?? ''}`);
      return f.src === '10.1.0.1' ? resurrected-- > 0 : true;
    },
  };
  const waits: number[] = [];
  await revokeFlows(ct, model(), async (ms) => { waits.push(ms); });
  t.same(removed, ['10.200.0.1:50000 -> 10.1.0.1:9001', '10.1.0.1:9001 -> 10.200.0.1:50000', '10.1.0.1:9001 -> 10.200.0.1:50000', '10.1.0.1:9001 -> 10.200.0.1:50000'],
    'deleted from the host\'s side until a look finds it gone');
  t.same(waits, [100, 100, 100], 'each look 100 ms after the last');
});
