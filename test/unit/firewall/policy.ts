// Bad input of every kind is refused with the field named; good input comes
// out canonical.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { FirewallPolicySchema, type FirewallPolicy } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { PolicyError, validatePolicy } from '../../../agent/src/firewall/policy.js';
import { parsePolicyJson } from '../../../agent/src/firewall/policy-file.js';
import { loadPolicy } from '../../fixtures/goldens.js';

type Mutate = (p: FirewallPolicy) => void;

function fieldOf(mutate: Mutate): string {
  const p = loadPolicy('mixed');
  mutate(p);
  try {
    validatePolicy(p);
  } catch (err) {
    if (err instanceof PolicyError) return err.field;
    throw err;
  }
  return '(accepted)';
}

const rule = (p: FirewallPolicy, i: number) => {
  const r = p.rules[i];
  if (!r) throw new Error(`fixture has no rule ${i}`);
  return r;
};

void t.test('bad input names the field', async (t) => {
  const cases: [string, Mutate, string][] = [
    ['malformed prefix in an object', (p) => { p.objects[0]?.prefixes.push('10.0.0.300/24'); }, 'objects[0].prefixes[4]'],
    ['prefix length out of range', (p) => { rule(p, 0).source = { $typeName: 'hostnet.v1.PolicySource', kind: { case: 'prefixes', value: { $typeName: 'hostnet.v1.PrefixList', prefixes: ['10.0.0.0/40'] } } }; }, 'rules[0].source.prefixes[0]'],
    ['port 0', (p) => { rule(p, 1).ports[0] = { $typeName: 'hostnet.v1.PortRange', first: 0, last: 0 }; }, 'rules[1].ports[0].first'],
    ['port above 65535', (p) => { rule(p, 1).ports[0] = { $typeName: 'hostnet.v1.PortRange', first: 80, last: 65536 }; }, 'rules[1].ports[0].last'],
    ['inverted range', (p) => { rule(p, 1).ports[1] = { $typeName: 'hostnet.v1.PortRange', first: 9000, last: 8000 }; }, 'rules[1].ports[1]'],
    ['unknown object reference', (p) => { rule(p, 1).source = { $typeName: 'hostnet.v1.PolicySource', kind: { case: 'objectId', value: 'nope' } }; }, 'rules[1].source.object_id'],
    ['empty object', (p) => { if (p.objects[1]) p.objects[1].prefixes = []; }, 'objects[1].prefixes'],
    ['duplicate rule ids', (p) => { rule(p, 2).id = rule(p, 1).id; }, 'rules[2].id'],
    ['duplicate object ids', (p) => { if (p.objects[1] && p.objects[0]) p.objects[1].id = p.objects[0].id; }, 'objects[1].id'],
    ['a 1 MB comment', (p) => { rule(p, 0).comment = 'x'.repeat(1 << 20); }, 'rules[0].comment'],
    ['ports on ICMP', (p) => { rule(p, 3).ports.push({ $typeName: 'hostnet.v1.PortRange', first: 1, last: 0 }); }, 'rules[3].ports'],
    ['no source', (p) => { rule(p, 0).source = undefined; }, 'rules[0].source'],
    ['no action', (p) => { rule(p, 0).action = 0; }, 'rules[0].action'],
    ['no protocol', (p) => { rule(p, 0).protocol = 0; }, 'rules[0].protocol'],
    ['bad rule id', (p) => { rule(p, 0).id = 'has space'; }, 'rules[0].id'],
    ['bad object id', (p) => { if (p.objects[0]) p.objects[0].id = 'Web_Clients'; }, 'objects[0].id'],
    ['bad destination', (p) => { rule(p, 0).destinations.push('fe80::1%eth0'); }, 'rules[0].destinations[0]'],
    ['overlong interface name', (p) => { p.failsafe?.uplinks.push('a-very-long-ifname0'); }, 'failsafe.uplinks[2]'],
    ['bad management prefix', (p) => { p.failsafe?.managementPrefixes.push('192.0.2.0/xx'); }, 'failsafe.management_prefixes[1]'],
    ['bad host address', (p) => { p.hostAddresses.push('10.1.0.999'); }, 'host_addresses[1]'],
  ];
  for (const [what, mutate, field] of cases) t.equal(fieldOf(mutate), field, what);
  t.equal(fieldOf(() => undefined), '(accepted)', 'the unmodified fixture is valid');
});

void t.test('config management prefixes are checked too', async (t) => {
  let field = '';
  try {
    validatePolicy(create(FirewallPolicySchema, {}), ['nope']);
  } catch (err) {
    field = (err as PolicyError).field;
  }
  t.equal(field, 'managementPrefixes[0]');
});

void t.test('normalisation: canonical, split by family, deduplicated', async (t) => {
  const v = validatePolicy(loadPolicy('hosts-v6'), ['198.51.100.9/24']);
  const monitoring = v.objects.get('monitoring');
  t.same(monitoring?.v4, { addrs: [0x0ac80000, 0x0ac80500], lens: [16, 24] }, 'IPv4 networks as numbers');
  t.same(monitoring?.v6, { addrs: [0xfd000200000000000000000000000000n], lens: [32] });
  t.same(v.failsafe.management.v4, ['198.51.100.0/24'], 'config and policy management prefixes merge without duplicates');
  t.same(v.rules[0]?.ports, [[22, 22]]);
});

void t.test('policy files: unknown fields and bad JSON are named', async (t) => {
  t.throws(() => parsePolicyJson('{"version": "v1", "bogus": 1}', 'p.json'), /p\.json: bogus: unknown key \(one of version, hostId/);
  t.throws(() => parsePolicyJson('{"rules": [{"id": "r", "sourc": {}}]}', 'p.json'), /p\.json: rules\[0\]\.sourc: unknown key/, 'a nested key is named with its path');
  t.throws(() => parsePolicyJson('{"rules": [{"id": "r", "action": "ALLOW"}]}', 'p.json'), /p\.json: rules\[0\]\.action: "ALLOW" is not one of ACTION_ALLOW, ACTION_DENY/);
  t.throws(() => parsePolicyJson('{"version": ', 'p.json'), /p\.json: not valid JSON/);
  t.throws(() => parsePolicyJson('{"rules": [{"action": "ACTION_MAYBE"}]}', 'p.json'), /p\.json: .*ACTION_MAYBE/);
});
