// IntervalSet: incremental changes agree with recomputing from scratch, and
// the returned difference turns the old merged list into the new one.
import t from 'tap';
import { IntervalSet, type Interval, formatInterval, prefixInterval } from '../../../agent/src/firewall/intervals.js';

const key = (iv: Interval): string => `${iv.start}-${iv.end}`;

void t.test('merging: overlapping and touching prefixes become one interval', async (t) => {
  const s = IntervalSet.fromPrefixes(4, ['10.0.0.0/24', '10.0.1.0/24', '10.0.0.128/25', '10.0.3.0/24', '10.0.3.0/24']);
  t.same(s.merged.map((iv) => formatInterval(4, iv)), ['10.0.0.0/23', '10.0.3.0/24']);
  t.equal(s.prefixCount, 4, 'duplicates collapse, nested prefixes are kept for later removals');
  const d = s.change([], [prefixInterval(4, 0x0a000000n, 24)]);
  t.same(d.removed.map((iv) => formatInterval(4, iv)), ['10.0.0.0/23']);
  t.same(d.added.map((iv) => formatInterval(4, iv)), ['10.0.0.128-10.0.1.255'], 'the /25 still covers part of it');
  t.same(s.change([], [prefixInterval(4, 0x0a000000n, 24)]), { removed: [], added: [] }, 'removing an absent prefix is a no-op');
  t.throws(() => IntervalSet.fromPrefixes(4, ['2001:db8::/32']), /not an IPv4 prefix/);
});

void t.test('random changes agree with a naive recomputation (v4 and v6)', async (t) => {
  let seed = 7;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  for (const family of [4, 6] as const) {
    const bits = family === 4 ? 32 : 128;
    const pool: Interval[] = Array.from({ length: 60 }, () => {
      const len = bits - 8 + rnd(9);
      const addr = BigInt(rnd(4096)) << BigInt(bits - 12);
      return prefixInterval(family, addr + (BigInt(rnd(256)) << BigInt(bits - len)), len);
    });
    const present = new Set<string>();
    const s = IntervalSet.fromPrefixes(family, []);
    for (let step = 0; step < 400; step++) {
      const add = [pool[rnd(pool.length)] as Interval];
      const remove = rnd(2) === 0 ? [pool[rnd(pool.length)] as Interval] : [];
      const before = new Set(s.merged.map(key));
      const d = s.change(add, remove);
      for (const r of remove) present.delete(key(r));
      for (const a of add) present.add(key(a));
      const naive = IntervalSet.fromPrefixes(family, [...present].map((k) => {
        const [a, b] = k.split('-').map(BigInt) as [bigint, bigint];
        return formatInterval(family, { start: a, end: b });
      }));
      const got = s.merged.map(key);
      if (got.join() !== naive.merged.map(key).join()) {
        t.fail(`step ${step}: merged differs from recomputation`);
        return;
      }
      const after = new Set(before);
      for (const r of d.removed) after.delete(key(r));
      for (const a of d.added) after.add(key(a));
      if ([...after].sort().join() !== [...got].sort().join()) {
        t.fail(`step ${step}: the difference does not turn old into new`);
        return;
      }
    }
    t.pass(`IPv${family}: 400 random steps agree`);
  }
});

void t.test('clone is independent', async (t) => {
  const a = IntervalSet.fromPrefixes(4, ['10.0.0.0/24']);
  const b = a.clone();
  b.change([prefixInterval(4, 0x0b000000n, 8)], []);
  t.equal(a.prefixCount, 1);
  t.equal(b.prefixCount, 2);
});
