// Rendered rulesets match their golden files (regenerate with `npm run golden`).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { goldenPath, policyNames, renderGolden } from '../../fixtures/goldens.js';

void t.test('every fixture policy renders exactly as its golden file', async (t) => {
  const names = policyNames();
  t.ok(names.length >= 3, 'there are fixture policies');
  for (const name of names) {
    t.equal(renderGolden(name), readFileSync(goldenPath(name), 'utf8'), `${name}.nft is up to date (npm run golden)`);
  }
});

void t.test('the goldens carry the invariants a reader checks by eye', async (t) => {
  const text = renderGolden('deny-all');
  t.match(text, /^table inet hostnet \{\}\ndelete table inet hostnet\ntable inet hostnet \{\n/, 'atomic replace of our table only');
  t.match(text, /type filter hook input priority filter; policy drop;/, 'default deny');
  t.match(text, /iifname \{ "eth0", "eth1" \} ip6 saddr fe80::\/10 tcp dport 20179 counter accept comment "failsafe:bgp"/,
    'BGP failsafe on the catalog port, link-local peers on the uplinks only');
  t.match(text, /set mgmt4_24 \{\n\t\ttype ipv4_addr\n\t\telements = \{\n\t\t\t203\.0\.113\.0\n/, 'management prefixes from the config');
  t.match(text, /ip saddr & 255\.255\.255\.0 @mgmt4_24 counter accept comment "failsafe:management"/);
  const failsafeAt = text.indexOf('failsafe:bgp');
  const aclAt = text.indexOf('jump acl');
  t.ok(failsafeAt > 0 && failsafeAt < aclAt, 'failsafes come before the ACL: no rule can remove them');
  t.notMatch(text, /table (ip|ip6|inet) (?!hostnet)/, 'no other table is mentioned');
});
