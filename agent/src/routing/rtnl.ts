// The rtnetlink seam of the routing part: links and addresses of the
// network namespace the process runs in, and their change notifications.
import { createRtNetlink } from 'netlink';
import { formatPrefix, parsePrefix } from '../../../common/prefix.js';

export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  /** Administratively up (IFF_UP). */
  readonly up: boolean;
  /** The driver signals a link (IFF_LOWER_UP): a cable, a peer. */
  readonly carrier: boolean;
}

export interface AddrInfo {
  readonly index: number;
  /** Canonical "address/len" of the interface address (host bits kept). */
  readonly address: string;
  /** RT_SCOPE_*: 0 universe, 253 link, 254 host. */
  readonly scope: number;
}

export interface RtLinks {
  links(): Promise<LinkInfo[]>;
  addresses(): Promise<AddrInfo[]>;
  createLink(name: string, kind: string): Promise<void>;
  setUp(index: number): Promise<void>;
  addAddress(index: number, address: string): Promise<void>;
  delAddress(index: number, address: string): Promise<void>;
  /** Calls `on` for every link or address notification. */
  watch(on: () => void): void;
  close(): void;
}

const NLM_F_CREATE = 0x400;
const NLM_F_EXCL = 0x200;
const RTNLGRP_LINK = 1;
const RTNLGRP_IPV4_IFADDR = 5;
const RTNLGRP_IPV6_IFADDR = 9;
const IFLA_INFO_KIND = 1;

function linkInfoKind(kind: string): Buffer {
  const payload = Buffer.from(`${kind}\0`);
  const out = Buffer.alloc(4 + Math.ceil(payload.length / 4) * 4);
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(IFLA_INFO_KIND, 2);
  payload.copy(out, 4);
  return out;
}

function addrBytes(address: string): { family: number; bytes: Buffer; len: number } {
  const p = parsePrefix(address);
  const n = p.family === 4 ? 4 : 16;
  const bytes = Buffer.alloc(n);
  let v = p.addr;
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return { family: p.family === 4 ? 2 : 10, bytes, len: p.len };
}

function bytesToPrefix(bytes: Buffer, len: number): string {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return formatPrefix({ family: bytes.length === 4 ? 4 : 6, addr: v, len });
}

/**
 * Opens rtnetlink in the current network namespace: one socket for requests,
 * one at a time (the replies of two dumps on one socket interleave: "Multipart
 * message not terminated properly"), and another for notifications, so they
 * never land in the middle of a dump.
 */
export function openRtLinks(): RtLinks {
  const rt = createRtNetlink();
  rt.socket.socket.unref();
  let mon: ReturnType<typeof createRtNetlink> | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    links: () => serial(async () => (await rt.getLinks()).map((l) => ({
      index: l.data.index ?? 0, name: l.attrs.ifname ?? '', up: Boolean(l.data.flags?.up), carrier: Boolean(l.data.flags?.lowerUp),
    }))),
    addresses: () => serial(async () => (await rt.getAddresses()).flatMap((a) => {
      const raw = a.attrs.local ?? a.attrs.address;
      if (!raw) return [];
      return [{ index: a.data.index ?? 0, address: bytesToPrefix(raw, a.data.prefixlen ?? 0), scope: a.data.scope ?? 0 }];
    })),
    createLink: (name, kind) => serial(async () => {
      await rt.newLink({}, { ifname: name, linkinfo: linkInfoKind(kind) }, { flags: NLM_F_CREATE | NLM_F_EXCL });
    }),
    setUp: (index) => serial(async () => {
      await rt.setLink({ index, flags: { up: true }, change: { up: true } });
    }),
    addAddress: (index, address) => serial(async () => {
      const { family, bytes, len } = addrBytes(address);
      await rt.newAddress({ family, prefixlen: len, index }, family === 2 ? { address: bytes, local: bytes } : { address: bytes },
        { flags: NLM_F_CREATE | NLM_F_EXCL });
    }),
    delAddress: (index, address) => serial(async () => {
      const { family, bytes, len } = addrBytes(address);
      await rt.delAddress({ family, prefixlen: len, index }, family === 2 ? { address: bytes, local: bytes } : { address: bytes });
    }),
    watch(on) {
      mon ??= createRtNetlink();
      for (const g of [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR]) mon.addMembership(g);
      mon.on('message', () => on());
    },
    close() {
      rt.socket.close();
      mon?.socket.close();
    },
  };
}
