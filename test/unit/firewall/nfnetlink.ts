// The netlink codec: batches parse back into what was meant; notifications decode.
import t from 'tap';
import { NftMsg, elementBatch, parseEvent, parseMessages } from '../../../agent/src/firewall/nfnetlink.js';

void t.test('an element batch is begin, removals, additions, end', async (t) => {
  const batch = elementBatch([{
    table: 'hostnet', set: 'o4_web', family: 4,
    add: [{ start: 0x0a000100n, end: 0x0a0001ffn }, { start: 0xffffff00n, end: 0xffffffffn }],
    remove: [{ start: 0x0a000200n, end: 0x0a0002ffn }],
  }], 100);
  const msgs = parseMessages(batch.bytes);
  t.same(msgs.map((m) => m.type), [0x10, (10 << 8) | NftMsg.DELSETELEM, (10 << 8) | NftMsg.NEWSETELEM, 0x11]);
  t.same(msgs.map((m) => m.seq), [100, 101, 102, 103]);
  t.same(batch.seqs, [101, 102], 'ACKs are asked for the element messages');
  t.equal(msgs[2]?.flags, 0x1 | 0x4 | 0x400, 'additions: request, ack, create');
  const add = msgs[2]?.payload ?? Buffer.alloc(0);
  t.ok(add.includes(Buffer.from('hostnet\0')) && add.includes(Buffer.from('o4_web\0')), 'table and set named');
  t.ok(add.includes(Buffer.from([10, 0, 1, 0])), 'start key in network order');
  t.ok(add.includes(Buffer.from([10, 0, 2, 0])), 'end marker at end + 1');
  t.ok(add.includes(Buffer.from([255, 255, 255, 0])), 'an interval at the top of the space has only its start');
  t.ok(add.includes(Buffer.from([0x01, 0x04, 0x01, 0x00, 0x00, 0x00])), '... marked open, as nft marks it');
  t.match(batch.describe.get(101), /delete elements of set o4_web/);
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
