// Random policies: rendering is deterministic, the failsafes are always there
// and come before the ACL, and real `nft -c` accepts every rendered ruleset;
// so do the golden files.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { create } from '@bufbuild/protobuf';
import { Lab } from '../../lab/index.js';
import { goldenPath, policyNames } from '../../fixtures/goldens.js';
import { buildModel } from '../../../agent/src/firewall/model.js';
import { validatePolicy } from '../../../agent/src/firewall/policy.js';
import { renderFull, toText } from '../../../agent/src/firewall/render.js';
import { FirewallPolicySchema, type FirewallPolicy } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { Action, Protocol } from '../../../proto/gen/hostnet/v1/resources_pb.js';

function randomPolicy(seed: number): FirewallPolicy {
  let s = seed;
  const rnd = (n: number): number => { s = (s * 1103515245 + 12345) % 2 ** 31; return s % n; };
  const v4 = (): string => `${10 + rnd(200)}.${rnd(256)}.${rnd(256)}.${rnd(256)}/${8 + rnd(25)}`;
  const v6 = (): string => `2001:db8:${rnd(65536).toString(16)}:${rnd(65536).toString(16)}::/${32 + rnd(97)}`;
  const prefix = (): string => (rnd(3) === 0 ? v6() : v4());
  const objects = Array.from({ length: 1 + rnd(6) }, (_, i) => ({
    id: `obj-${i}`, prefixes: Array.from({ length: 1 + rnd(40) }, prefix),
  }));
  const protocols = [Protocol.ANY, Protocol.TCP, Protocol.UDP, Protocol.ICMP, Protocol.ICMPV6];
  const rules = Array.from({ length: rnd(30) }, (_, i) => {
    const protocol = protocols[rnd(protocols.length)] ?? Protocol.ANY;
    const ported = protocol === Protocol.TCP || protocol === Protocol.UDP;
    const kind = rnd(3);
    return {
      id: `r${i}`,
      action: rnd(2) === 0 ? Action.ALLOW : Action.DENY,
      source: kind === 0 ? { kind: { case: 'any' as const, value: true } }
        : kind === 1 ? { kind: { case: 'objectId' as const, value: `obj-${rnd(objects.length)}` } }
        : { kind: { case: 'prefixes' as const, value: { prefixes: Array.from({ length: 1 + rnd(4) }, prefix) } } },
      destinations: rnd(3) === 0 ? ['10.1.0.10/32', '2001:db8:1::10/128'].slice(0, 1 + rnd(2)) : [],
      protocol,
      ports: ported ? Array.from({ length: rnd(4) }, () => { const a = 1 + rnd(65000); return { first: a, last: rnd(2) ? a + rnd(500) : 0 }; }) : [],
      comment: `random rule ${i} "quoted" \\ backslash`,
    };
  });
  return create(FirewallPolicySchema, {
    version: `random-${seed}`, hostId: 'h', hostAddresses: ['10.1.0.10/32'], objects, rules,
    failsafe: { bgpPort: [0, 179, 20179][rnd(3)] ?? 179, uplinks: ['eth0', 'eth1'].slice(0, rnd(3)), bfd: rnd(2) === 0, managementPrefixes: rnd(2) ? [v4()] : [] },
  });
}

const render = (p: FirewallPolicy): string => toText(renderFull(buildModel(validatePolicy(p, ['192.0.2.0/24']))));

void t.test('random policies: deterministic, failsafes first, accepted by nft -c', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const ns = await lab.netns('check');
  for (let seed = 1; seed <= 40; seed++) {
    const p = randomPolicy(seed);
    const text = render(p);
    t.equal(render(randomPolicy(seed)), text, `seed ${seed}: same policy, same text`);
    const reversedObjects = create(FirewallPolicySchema, { ...p, objects: [...p.objects].reverse().map((o) => ({ ...o, prefixes: [...o.prefixes].reverse() })) });
    t.equal(render(reversedObjects), text, `seed ${seed}: object and prefix order do not matter`);
    const jump = text.indexOf('jump acl');
    t.ok(jump > 0, `seed ${seed}: the base chain jumps to the ACL`);
    /** Present, and before the jump to the ACL (an absent line fails: indexOf -1 is not "before"). */
    const before = (needle: string, what: string): void => {
      const at = text.indexOf(needle);
      t.ok(at >= 0 && at < jump, `seed ${seed}: ${what} ${at < 0 ? 'is missing' : 'before the ACL'}`);
    };
    before('policy drop;', 'default drop');
    // Management prefixes: the config's 192.0.2.0/24 always, the policy's own when it has some.
    before('@mgmt4_24 counter accept comment "failsafe:management"', 'management failsafe (192.0.2.0/24)');
    t.match(text, /mgmt4_24 \{[^}]*\b192\.0\.2\.0\b/, `seed ${seed}: the management set holds 192.0.2.0`);
    const fs = p.failsafe;
    if (fs && fs.uplinks.length > 0) {
      before('comment "failsafe:nd"', 'ND failsafe');
      if (fs.bgpPort > 0) before(`tcp dport ${fs.bgpPort} counter accept comment "failsafe:bgp"`, `BGP failsafe on ${fs.bgpPort}`);
      if (fs.bfd) before('comment "failsafe:bfd"', 'BFD failsafe');
    }
    const r = await ns.exec(['nft', '-c', '-f', '-'], { stdin: text, allowFail: true });
    t.equal(r.code, 0, `seed ${seed}: nft -c accepts it ${r.stderr.split('\n')[0] ?? ''}`);
  }
});

void t.test('every golden file passes nft -c', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const ns = await lab.netns('golden');
  for (const name of policyNames()) {
    const r = await ns.exec(['nft', '-c', '-f', goldenPath(name)], { allowFail: true });
    t.equal(r.code, 0, `${name}.nft ${r.stderr.split('\n')[0] ?? ''}`);
    t.ok(readFileSync(goldenPath(name), 'utf8').length > 0);
  }
});
