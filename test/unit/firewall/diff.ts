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
  const tx = diff(snapshot(modelOf()), snapshot(modelOf((p) => { p.objects[1]?.prefixes.push('192.168.51.0/24'); })));
  t.equal(tx.kind, 'elements');
  if (tx.kind !== 'elements') return;
  t.equal(tx.changes.length, 1);
  t.equal(tx.changes[0]?.set, 'o4_admins');
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
  const del = text.indexOf('delete set inet hostnet o4_admins');
  t.ok(flush >= 0 && del > flush, 'flush first, then delete the set');
  t.ok(text.includes('delete set inet hostnet o6_admins'));
});

void t.test('a failsafe change rewrites the input chain', async (t) => {
  const tx = diff(snapshot(modelOf()), snapshot(modelOf((p) => { if (p.failsafe) p.failsafe.bgpPort = 20179; })));
  if (tx.kind !== 'nft') { t.fail(`expected nft, got ${tx.kind}`); return; }
  t.ok(tx.lines.some((l) => l.text === 'flush chain inet hostnet input'));
  t.ok(tx.lines.some((l) => l.text.includes('tcp dport 20179') && l.origin === 'failsafe bgp'));
});
