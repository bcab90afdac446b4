// The netlink codec: batches parse back into what was meant; notifications decode.
import t from 'tap';
import { NftMsg, elementBatch, parseEvent, parseMessages } from '../../../agent/src/firewall/nfnetlink.js';

void t.test('an element batch is begin, removals, additions, end', async (t) => {
  const batch = elementBatch([{
    table: 'hostnet', set: 'o4_web_24', family: 4,
    add: [0x0a000100, 0xffffff00],
    remove: [0x0a000200],
  }, {
    table: 'hostnet', set: 'o6_web_48', family: 6, add: [0x20010db8000100000000000000000000n], remove: [],
  }], 100);
  const msgs = parseMessages(batch.bytes);
  t.same(msgs.map((m) => m.type), [0x10, (10 << 8) | NftMsg.DELSETELEM, (10 << 8) | NftMsg.NEWSETELEM, (10 << 8) | NftMsg.NEWSETELEM, 0x11]);
  t.same(msgs.map((m) => m.seq), [100, 101, 102, 103, 104]);
  t.same(batch.seqs, [101, 102, 103], 'ACKs are asked for the element messages');
  t.equal(msgs[2]?.flags, 0x1 | 0x4 | 0x400, 'additions: request, ack, create');
  const add = msgs[2]?.payload ?? Buffer.alloc(0);
  t.ok(add.includes(Buffer.from('hostnet\0')) && add.includes(Buffer.from('o4_web_24\0')), 'table and set named');
  t.ok(add.includes(Buffer.from([10, 0, 1, 0])), 'keys in network order');
  t.ok(add.includes(Buffer.from([255, 255, 255, 0])));
  t.notOk(add.includes(Buffer.from([10, 0, 2, 0])), 'removals are not in the addition message');
  const v6 = msgs[3]?.payload ?? Buffer.alloc(0);
  t.ok(v6.includes(Buffer.from([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), 'IPv6 keys are 16 bytes');
  t.match(batch.describe.get(101), /delete elements of set o4_web_24/);
});

void t.test('notifications decode', async (t) => {
  const gen = Buffer.alloc(16 + 4 + 8 + 8 + 12);
  gen.writeUInt32LE(gen.length, 0);
  gen.writeUInt16LE((10 << 8) | NftMsg.NEWGEN, 4);
  let off = 20;
  for (const [type, value] of [[1, 42], [2, 4242]] as const) {
    gen.writeUInt16LE(8, off); gen.writeUInt16LE(type, off + 2); gen.writeUInt32BE(value, off + 4); off += 8;
  }
  gen.writeUInt16LE(8, off); gen.writeUInt16LE(3, off + 2); gen.write('nft\0', off + 4);
  const [m] = parseMessages(gen);
  t.same(m && parseEvent(m), { kind: 'gen', id: 42, pid: 4242, process: 'nft' });

  const del = Buffer.alloc(16 + 4 + 12);
  del.writeUInt32LE(del.length, 0);
  del.writeUInt16LE((10 << 8) | NftMsg.DELTABLE, 4);
  del.writeUInt8(1, 16);
  del.writeUInt16LE(12, 20); del.writeUInt16LE(1, 22); del.write('hostnet\0', 24);
  const [d] = parseMessages(del);
  t.same(d && parseEvent(d), { kind: 'change', msg: NftMsg.DELTABLE, family: 1, table: 'hostnet' });
  t.equal(parseEvent({ type: 0x0100, flags: 0, seq: 0, payload: Buffer.alloc(8) }), undefined, 'other subsystems are ignored');
});
