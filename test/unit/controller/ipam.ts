// The address index IPAM allocates from: the lowest free address of a pool,
// checked against a plain scan over random holdings and skip sets (both
// families, pools with and without network/broadcast addresses); and an
// overlay's view (a transaction's own creates, deletes and readdressed hosts).
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { formatAddress } from '../../../common/prefix.js';
import { AddressIndex, poolRange } from '../../../controller/src/ipam.js';
import { Overlay, Snapshot } from '../../../controller/src/store/snapshot.js';
import { HostSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

void t.test('lowestFree is what a scan of the pool finds', async (t) => {
  const random = rng(7);
  for (const pool of ['10.1.0.0/27', '10.1.0.0/31', '2001:db8:1::/123']) {
    const r = poolRange(pool);
    const all = Array.from({ length: Number(r.last - r.first) + 1 }, (_, i) => `${formatAddress(r.family, r.first + BigInt(i))}/${r.bits}`);
    const index = new AddressIndex();
    const held = new Set<string>();
    let mismatches = 0;
    for (let step = 0; step < 2000; step++) {
      const a = all[Math.floor(random() * all.length)] as string;
      if (held.has(a)) {
        index.remove(a);
        held.delete(a);
      } else {
        index.add(a, `h${step}`);
        held.add(a);
      }
      const skip = new Set(all.filter(() => random() < 0.1));
      const want = all.find((x) => !held.has(x) && !skip.has(x));
      if (index.lowestFree(pool, skip) !== want) mismatches++;
    }
    t.equal(mismatches, 0, `${pool}: 2000 random steps, every answer the scan's`);
  }
  const full = new AddressIndex();
  for (const a of ['10.2.0.1/32', '10.2.0.2/32']) full.add(a, 'x');
  t.equal(full.lowestFree('10.2.0.0/30'), undefined, 'a full pool: none');
  t.equal(full.owner('10.2.0.2/32'), 'x');
});

void t.test('an overlay sees its own transaction: taken, freed, readdressed', async (t) => {
  const host = (id: string, addresses: string[]) => create(HostSchema, { id, subnetId: 's', catalog: 'c', asn: 1, addresses });
  const snap = new Snapshot();
  snap.reset([1, 2, 3].map((i) => ({ kind: 'host' as const, key: `h${i}`, value: host(`h${i}`, [`10.0.0.${i}/32`]), revision: 1 })), 1);
  t.equal(snap.lowestFreeAddress('10.0.0.0/24'), '10.0.0.4/32');
  const tx = new Overlay(snap);
  tx.delete('host', 'h2');
  t.equal(tx.lowestFreeAddress('10.0.0.0/24'), '10.0.0.2/32', 'an address freed in the transaction is the lowest');
  t.equal(tx.hostOfAddress('10.0.0.2/32'), undefined, 'and held by nobody');
  tx.put('host', 'h9', host('h9', ['10.0.0.2/32']));
  t.equal(tx.hostOfAddress('10.0.0.2/32'), 'h9', 'taken again in the transaction');
  t.equal(tx.lowestFreeAddress('10.0.0.0/24'), '10.0.0.4/32');
  tx.put('host', 'h1', host('h1', ['10.0.0.7/32']));
  t.equal(tx.lowestFreeAddress('10.0.0.0/24'), '10.0.0.1/32', 'a host readdressed frees its old address');
  t.equal(tx.hostOfAddress('10.0.0.7/32'), 'h1');
  t.ok(tx.listed.has('host'), 'an address lookup depends on every host (the etcd engine compares the kind)');
  t.equal(snap.lowestFreeAddress('10.0.0.0/24'), '10.0.0.4/32', 'the snapshot is untouched');
  snap.apply(2, [{ kind: 'host', key: 'h1', value: host('h1', ['10.0.0.7/32']), revision: 2 }], [{ kind: 'host', key: 'h2' }]);
  t.equal(snap.lowestFreeAddress('10.0.0.0/24'), '10.0.0.1/32', 'applied: the index follows');
  t.same(snap.list('host').map((h) => h.key), ['h1', 'h3'], 'and the sorted list too');
});
