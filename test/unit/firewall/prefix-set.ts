// PrefixSet: per-length element sets; in-place changes report exactly what
// changed, undo restores, diffTo compares.
import t from 'tap';
import { PrefixSet, formatAddr, maskText } from '../../../agent/src/firewall/prefix-set.js';
import { objectPrefixes } from '../../../agent/src/firewall/policy.js';

const v4 = (texts: readonly string[]) => objectPrefixes('p', texts).v4;

void t.test('grouping by length, duplicates collapse, host bits cleared', async (t) => {
  const s = PrefixSet.from(4, v4(['10.0.0.0/24', '10.0.1.0/24', '10.0.0.128/25', '10.0.3.7/24', '10.0.3.0/24', '10.9.9.9/32']));
  t.same(s.lengths(), [24, 25, 32]);
  t.equal(s.prefixCount, 5);
  t.same(s.prefixTexts(), ['10.0.0.0/24', '10.0.1.0/24', '10.0.3.0/24', '10.0.0.128/25', '10.9.9.9/32']);
  t.equal(maskText(4, 24), '255.255.255.0');
  t.equal(maskText(4, 0), '0.0.0.0');
  t.equal(maskText(6, 48), 'ffff:ffff:ffff::');
  t.equal(formatAddr(6, 0x20010db8000000000000000000000001n), '2001:db8::1');
});

void t.test('changes report what changed; lengths appearing or vanishing are flagged; undo restores', async (t) => {
  const s = PrefixSet.from(4, v4(['10.0.0.0/24', '10.0.1.0/24']));
  const c1 = s.change(v4(['10.0.2.0/24', '10.0.0.0/24']), v4(['10.0.1.0/24', '10.7.0.0/24']));
  t.same([...c1.added], [[24, [0x0a000200]]], 'only the new one is added');
  t.same([...c1.removed], [[24, [0x0a000100]]], 'only the present one is removed');
  t.equal(c1.lengthsChanged, false);
  const c2 = s.change(v4(['10.1.0.0/16']), v4([]));
  t.equal(c2.lengthsChanged, true, 'a new length');
  c2.undo();
  c1.undo();
  t.same(s.prefixTexts(), ['10.0.0.0/24', '10.0.1.0/24'], 'undo restores');
  const c3 = s.change(v4([] as string[]), v4(['10.0.0.0/24', '10.0.1.0/24']));
  t.equal(c3.lengthsChanged, true, 'the last prefix of a length');
  t.equal(s.prefixCount, 0);
});

void t.test('random changes agree with a recomputation from scratch', async (t) => {
  let seed = 11;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  const pool = Array.from({ length: 80 }, () => `10.${rnd(4)}.${rnd(4) * 64}.0/${[18, 24, 26][rnd(3)]}`);
  const present = new Set<string>();
  const s = PrefixSet.from(4, v4([]));
  for (let step = 0; step < 500; step++) {
    const add = [pool[rnd(pool.length)] as string];
    const remove = rnd(2) ? [pool[rnd(pool.length)] as string] : [];
    s.change(v4(add), v4(remove));
    for (const r of objectPrefixes('x', remove).v4.addrs.map((a, i) => `${formatAddr(4, a)}/${objectPrefixes('x', remove).v4.lens[i]}`)) present.delete(r);
    for (const a of objectPrefixes('x', add).v4.addrs.map((a, i) => `${formatAddr(4, a)}/${objectPrefixes('x', add).v4.lens[i]}`)) present.add(a);
    const fresh = PrefixSet.from(4, v4([...present]));
    const d = fresh.diffTo(s);
    if (d.add.size + d.remove.size > 0 || fresh.prefixCount !== s.prefixCount) {
      t.fail(`step ${step}: differs from recomputation`);
      return;
    }
  }
  t.pass('500 random steps agree');
});

void t.test('diffTo per length', async (t) => {
  const a = PrefixSet.from(4, v4(['10.0.0.0/24', '10.1.0.0/16']));
  const b = PrefixSet.from(4, v4(['10.0.0.0/24', '10.2.0.0/16', '10.3.3.3/32']));
  const d = a.diffTo(b);
  t.same([...d.add].sort(), [[16, [0x0a020000]], [32, [0x0a030303]]]);
  t.same([...d.remove], [[16, [0x0a010000]]]);
});
