// Just enough of the nf_tables netlink protocol (linux/netfilter/nf_tables.h,
// nfnetlink.h) to add and delete set elements in one atomic batch,
// and to read the change notifications the kernel multicasts. Pure encode and
// decode; the socket lives in nft-netlink.ts.
import type { Family } from '../../../common/prefix.js';
import type { Addr } from './prefix-set.js';

export const NETLINK_NETFILTER = 12;
export const NFNLGRP_NFTABLES = 7;
const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_CREATE = 0x400;
const NFPROTO_INET = 1;
const NLA_F_NESTED = 0x8000;

/** nf_tables message types (enum nf_tables_msg_types). */
export const NftMsg = {
  NEWTABLE: 0, DELTABLE: 2, NEWCHAIN: 3, DELCHAIN: 5, NEWRULE: 6, DELRULE: 8, NEWSET: 9, DELSET: 11,
  NEWSETELEM: 12, DELSETELEM: 14, NEWGEN: 15, NEWOBJ: 18, DELOBJ: 20, NEWFLOWTABLE: 22, DELFLOWTABLE: 24,
} as const;

const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_DATA_VALUE = 1;

const NFTA_GEN_ID = 1;
const NFTA_GEN_PROC_PID = 2;
const NFTA_GEN_PROC_NAME = 3;
/** The first attribute of table, chain, rule, set and element messages is the table name. */
const NFTA_TABLE_ATTR = 1;
const NFTA_CHAIN_NAME = 3;
const NFTA_CHAIN_HOOK = 4;
const NFTA_CHAIN_POLICY = 5;
const NFTA_HOOK_HOOKNUM = 1;
const NFTA_HOOK_PRIORITY = 2;

const align4 = (n: number): number => (n + 3) & ~3;

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

const nested = (type: number, children: Buffer[]): Buffer => attr(type | NLA_F_NESTED, Buffer.concat(children));
const strAttr = (type: number, s: string): Buffer => attr(type, Buffer.from(`${s}\0`));

function addrBytes(family: Family, addr: bigint): Buffer {
  const n = family === 4 ? 4 : 16;
  const b = Buffer.alloc(n);
  let v = addr;
  for (let i = n - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

function message(type: number, flags: number, seq: number, resId: number, payload: Buffer[], family = NFPROTO_INET): Buffer {
  const body = Buffer.concat(payload);
  const hdr = Buffer.alloc(20);
  hdr.writeUInt32LE(20 + body.length, 0);
  hdr.writeUInt16LE(type, 4);
  hdr.writeUInt16LE(flags, 6);
  hdr.writeUInt32LE(seq, 8);
  hdr.writeUInt32LE(0, 12);
  // nfgenmsg: family, version 0, res_id (big endian)
  hdr.writeUInt8(family, 16);
  hdr.writeUInt8(0, 17);
  hdr.writeUInt16BE(resId, 18);
  return Buffer.concat([hdr, body]);
}

/** Keys to add to and remove from one plain (hash) set. */
export interface ElementOp {
  readonly table: string;
  readonly set: string;
  readonly family: Family;
  readonly add: readonly Addr[];
  readonly remove: readonly Addr[];
}

export interface Batch {
  readonly bytes: Buffer;
  /** Sequence numbers of the messages that ask for an ACK. */
  readonly seqs: readonly number[];
  /** What each acked message does, for error messages. */
  readonly describe: ReadonlyMap<number, string>;
}

const PER_MESSAGE = 512;

/**
 * One nfnetlink batch (begin, element messages, end) doing every removal,
 * then every addition. The kernel applies a batch all or nothing. Pure.
 */
export function elementBatch(ops: readonly ElementOp[], firstSeq: number): Batch {
  let seq = firstSeq;
  const msgs: Buffer[] = [message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq++, NFNL_SUBSYS_NFTABLES, [])];
  const seqs: number[] = [];
  const describe = new Map<number, string>();
  const emit = (op: ElementOp, type: number, list: readonly Addr[]): void => {
    for (let i = 0; i < list.length; i += PER_MESSAGE) {
      const elems = list.slice(i, i + PER_MESSAGE)
        .map((a) => nested(NFTA_LIST_ELEM, [nested(NFTA_SET_ELEM_KEY, [attr(NFTA_DATA_VALUE, addrBytes(op.family, BigInt(a)))])]));
      const flags = NLM_F_REQUEST | NLM_F_ACK | (type === NftMsg.NEWSETELEM ? NLM_F_CREATE : 0);
      const s = seq++;
      msgs.push(message((NFNL_SUBSYS_NFTABLES << 8) | type, flags, s, 0, [
        strAttr(NFTA_SET_ELEM_LIST_TABLE, op.table),
        strAttr(NFTA_SET_ELEM_LIST_SET, op.set),
        nested(NFTA_SET_ELEM_LIST_ELEMENTS, elems),
      ]));
      seqs.push(s);
      describe.set(s, `${type === NftMsg.NEWSETELEM ? 'add' : 'delete'} elements of set ${op.set}`);
    }
  };
  for (const op of ops) emit(op, NftMsg.DELSETELEM, op.remove);
  for (const op of ops) emit(op, NftMsg.NEWSETELEM, op.add);
  msgs.push(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq++, NFNL_SUBSYS_NFTABLES, []));
  return { bytes: Buffer.concat(msgs), seqs, describe };
}

const NFT_MSG_GETGEN = 16;
const NFPROTO_UNSPEC = 0;

/** The request for the ruleset generation id (NFT_MSG_GETGEN); the answer is a NEWGEN message. */
export function generationRequest(seq: number): Buffer {
  return message((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, NLM_F_REQUEST, seq, 0, [], NFPROTO_UNSPEC);
}

/** The generation id in the payload of a NEWGEN answer; undefined when it carries none. */
export function parseGeneration(payload: Buffer): number | undefined {
  return payload.length < 4 ? undefined : attrs(payload.subarray(4)).get(NFTA_GEN_ID)?.readUInt32BE(0);
}

/** One parsed netlink message. */
export interface RawMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly payload: Buffer;
}

/** Splits a datagram into messages; stops at a malformed length. */
export function parseMessages(buf: Buffer): RawMessage[] {
  const out: RawMessage[] = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) break;
    out.push({ type: buf.readUInt16LE(off + 4), flags: buf.readUInt16LE(off + 6), seq: buf.readUInt32LE(off + 8), payload: buf.subarray(off + 16, off + len) });
    off += align4(len);
  }
  return out;
}

/** errno of an NLMSG_ERROR (0 is an ACK) and the seq of the message it answers. */
export function parseError(msg: RawMessage): { errno: number; seq: number } {
  const errno = -msg.payload.readInt32LE(0);
  const seq = msg.payload.length >= 16 ? msg.payload.readUInt32LE(4 + 8) : msg.seq;
  return { errno, seq };
}

function attrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & ~NLA_F_NESTED, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

const cstr = (b: Buffer | undefined): string => (b ? b.subarray(0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)).toString() : '');

/** A change notification from the nf_tables multicast group. */
export type NftEvent =
  | { readonly kind: 'gen'; readonly id: number; readonly pid: number; readonly process: string }
  | {
    readonly kind: 'change';
    readonly msg: number;
    readonly family: number;
    readonly table: string;
    /** For chain messages: its name, hook number, priority and policy (1 accept, 0 drop) when present. */
    readonly chain?: { readonly name: string; readonly hook?: number; readonly priority?: number; readonly policy?: number };
  };

/** Decodes one multicast message; undefined for messages of other subsystems. */
export function parseEvent(msg: RawMessage): NftEvent | undefined {
  if (msg.type >> 8 !== NFNL_SUBSYS_NFTABLES || msg.payload.length < 4) return undefined;
  const type = msg.type & 0xff;
  const family = msg.payload.readUInt8(0);
  const a = attrs(msg.payload.subarray(4));
  if (type === NftMsg.NEWGEN) {
    return {
      kind: 'gen',
      id: a.get(NFTA_GEN_ID)?.readUInt32BE(0) ?? 0,
      pid: a.get(NFTA_GEN_PROC_PID)?.readUInt32BE(0) ?? 0,
      process: cstr(a.get(NFTA_GEN_PROC_NAME)),
    };
  }
  const table = cstr(a.get(NFTA_TABLE_ATTR));
  if (type === NftMsg.NEWCHAIN || type === NftMsg.DELCHAIN) {
    const hook = a.get(NFTA_CHAIN_HOOK);
    const h = hook ? attrs(hook) : undefined;
    const policy = a.get(NFTA_CHAIN_POLICY);
    return {
      kind: 'change', msg: type, family, table,
      chain: {
        name: cstr(a.get(NFTA_CHAIN_NAME)),
        ...(h?.get(NFTA_HOOK_HOOKNUM) ? { hook: h.get(NFTA_HOOK_HOOKNUM)?.readUInt32BE(0) } : {}),
        ...(h?.get(NFTA_HOOK_PRIORITY) ? { priority: h.get(NFTA_HOOK_PRIORITY)?.readInt32BE(0) } : {}),
        ...(policy ? { policy: policy.readUInt32BE(0) } : {}),
      },
    };
  }
  return { kind: 'change', msg: type, family, table };
}
