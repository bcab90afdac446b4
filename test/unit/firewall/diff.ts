// The smallest transaction for each kind of change.
import t from 'tap';
import { diff, snapshot } from '../../../agent/src/firewall/diff.js';
import { buildModel } from '../../../agent/src/firewall/model.js';
import { validatePolicy } from '../../../agent/src/firewall/policy.js';
import { loadPolicy } from '../../fixtures/goldens.js';

const modelOf = (mutate: (p: ReturnType<typeof loadPolicy>) => void = () => undefined) => {
  const p = loadPolicy('hosts-v6');
  mutate(p);
  return buildModel(validatePolicy(p));
};

void t.test('no change, no transaction', async (t) => {
  t.same(diff(snapshot(modelOf()), snapshot(modelOf())), { kind: 'none' });
});

void t.test('element changes only: an element transaction, nothing else', async (t) => {
  const tx = diff(snapshot(modelOf()), snapshot(modelOf((p) => { p.objects[0]?.prefixes.push('10.201.0.0/16'); })));
  t.equal(tx.kind, 'elements');
  if (tx.kind !== 'elements') return;
  t.equal(tx.changes.length, 1);
  t.equal(tx.changes[0]?.set, 'o4_monitoring_16');
  t.equal(tx.changes[0]?.add.length, 1);
  t.equal(tx.changes[0]?.remove.length, 0);
});

void t.test('a rule change rewrites the ACL chain only', async (t) => {
  const tx = diff(snapshot(modelOf()), snapshot(modelOf((p) => { p.rules.pop(); })));
  t.equal(tx.kind, 'nft');
  if (tx.kind !== 'nft') return;
  const text = tx.lines.map((l) => l.text);
  t.equal(text[0], 'flush chain inet hostnet acl');
  t.notOk(text.includes('flush chain inet hostnet input'), 'the input chain is left alone');
  t.notOk(text.some((l) => l.includes('ping6')), 'the removed rule is gone');
  t.ok(text.every((l) => !l.startsWith('delete table')), 'no table replacement');
});

void t.test('removing an object deletes its sets after the rules that used them', async (t) => {
  const tx = diff(snapshot(modelOf()), snapshot(modelOf((p) => {
    p.objects = p.objects.filter((o) => o.id !== 'admins');
    p.rules = p.rules.filter((r) => r.id !== 'ssh-admins');
  })));
  if (tx.kind !== 'nft') { t.fail(`expected nft, got ${tx.kind}`); return; }
  const text = tx.lines.map((l) => l.text);
  const flush = text.indexOf('flush chain inet hostnet acl');
  const del = text.indexOf('delete set inet hostnet o4_admins_32');
  t.ok(flush >= 0 && del > flush, 'flush first, then delete the set');
});

void t.test('a prefix of a new length adds a set and rewrites the ACL chain', async (t) => {
  const tx = diff(snapshot(modelOf()), snapshot(modelOf((p) => { p.objects[1]?.prefixes.push('192.168.51.0/24'); })));
  if (tx.kind !== 'nft') { t.fail(`expected nft, got ${tx.kind}`); return; }
  const text = tx.lines.map((l) => l.text);
  t.ok(text.includes('add set inet hostnet o4_admins_24 { type ipv4_addr; }'));
  t.ok(text.includes('add element inet hostnet o4_admins_24 { 192.168.51.0 }'));
  t.ok(text.some((l) => l.includes('ip saddr & 255.255.255.0 @o4_admins_24')), 'a rule line for the new length');
});

void t.test('a failsafe change rewrites the input chain', async (t) => {
  const tx = diff(snapshot(modelOf()), snapshot(modelOf((p) => { if (p.failsafe) p.failsafe.bgpPort = 20179; })));
  if (tx.kind !== 'nft') { t.fail(`expected nft, got ${tx.kind}`); return; }
  t.ok(tx.lines.some((l) => l.text === 'flush chain inet hostnet input'));
  t.ok(tx.lines.some((l) => l.text.includes('tcp dport 20179') && l.origin === 'failsafe bgp'));
});
