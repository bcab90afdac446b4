// The netlink seam of the firewall: one socket for requests (element batches,
// the ruleset generation id) and one that listens to nf_tables change
// notifications. Bound to the network namespace the process runs in.
import { constants as osConstants } from 'node:os';
import { RawNetlinkSocket } from 'netlink';
import type { ElementOp } from './nfnetlink.js';
import {
  NETLINK_NETFILTER, NFNLGRP_NFTABLES, NLMSG_ERROR, type NftEvent,
  elementBatch, generationRequest, parseError, parseEvent, parseGeneration, parseMessages,
} from './nfnetlink.js';

const errnoNames = new Map(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));
const errnoText = (e: number): string => errnoNames.get(e) ?? `errno ${e}`;

export class NetlinkError extends Error {
  override readonly name = 'NetlinkError';
  constructor(message: string, readonly errno: number) {
    super(message);
  }
}

/** What the firewall needs from netlink; tests of pure code fake it. */
export interface NftNetlink {
  /** Applies all element changes in one batch; all or nothing. Throws NetlinkError. */
  applyElements(ops: readonly ElementOp[]): Promise<void>;
  /** The ruleset generation id; it grows by one per committed transaction. */
  generation(): Promise<number>;
  /** Starts or stops receiving change notifications (we stop while applying our own). */
  listen(on: boolean): void;
  close(): void;
}

export interface NftNetlinkHandlers {
  onEvent(event: NftEvent): void;
  /** Notifications were lost (receive buffer overflow): the caller must assume drift. */
  onOverflow(): void;
}

const TIMEOUT_MS = 5000;

/** Opens the two sockets. Throws when netlink is unavailable (no CAP_NET_ADMIN is only seen on use). */
export function openNftNetlink(handlers: NftNetlinkHandlers): NftNetlink {
  const cmd = new RawNetlinkSocket(NETLINK_NETFILTER, { recvBufferSize: 1 << 20, sendBufferSize: 8 << 20 });
  const mon = new RawNetlinkSocket(NETLINK_NETFILTER, { recvBufferSize: 8 << 20, sendBufferSize: 1 << 16 });
  let seq = Math.floor(Math.random() * 1e9);
  const pending = new Map<number, { resolve(msg: Buffer | undefined): void; reject(err: Error): void }>();
  let listening = false;

  cmd.on('message', (buf) => {
    for (const m of parseMessages(buf)) {
      if (m.type === NLMSG_ERROR) {
        const { errno, seq: s } = parseError(m);
        const p = pending.get(s);
        if (!p) continue;
        pending.delete(s);
        if (errno === 0) p.resolve(undefined);
        else p.reject(new NetlinkError(errnoText(errno), errno));
      } else {
        const p = pending.get(m.seq);
        if (p) {
          pending.delete(m.seq);
          p.resolve(m.payload);
        }
      }
    }
  });
  cmd.unref();

  mon.on('message', (buf) => {
    for (const m of parseMessages(buf)) {
      const ev = parseEvent(m);
      if (ev) handlers.onEvent(ev);
    }
  });
  mon.on('error', (err) => {
    if ((err as { code?: string }).code === 'ENOBUFS') handlers.onOverflow();
  });
  mon.unref();

  function waitFor(s: number, what: string): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(s);
        reject(new NetlinkError(`${what}: no answer from the kernel within ${TIMEOUT_MS} ms`, 0));
      }, TIMEOUT_MS);
      pending.set(s, {
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
  }

  function send(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => cmd.send(bytes, {}, (err) => (err ? reject(err) : resolve())));
  }

  return {
    async applyElements(ops) {
      const batch = elementBatch(ops, seq);
      seq += batch.seqs.length + 2;
      const answers = batch.seqs.map((s) => waitFor(s, batch.describe.get(s) ?? 'element batch')
        .then(() => undefined, (e: unknown) => ({ s, e })));
      cmd.ref();
      try {
        await send(batch.bytes);
        const failures = (await Promise.all(answers)).filter((x) => x !== undefined);
        const first = failures[0];
        if (first) {
          const e = first.e as NetlinkError;
          throw new NetlinkError(`${batch.describe.get(first.s) ?? 'element batch'}: ${e.message}`, e.errno);
        }
      } finally {
        cmd.unref();
      }
    },
    async generation() {
      const s = seq++;
      const reply = waitFor(s, 'read generation');
      cmd.ref();
      try {
        await send(generationRequest(s));
        const id = parseGeneration((await reply) ?? Buffer.alloc(0));
        if (id === undefined) throw new NetlinkError('read generation: no generation id in the answer', 0);
        return id;
      } finally {
        cmd.unref();
      }
    },
    listen(on) {
      if (on === listening) return;
      // Joining needs CAP_NET_ADMIN; the state changes only once the kernel agreed.
      if (on) {
        mon.addMembership(NFNLGRP_NFTABLES);
        mon.ref();
      } else {
        mon.dropMembership(NFNLGRP_NFTABLES);
        mon.unref();
      }
      listening = on;
    },
    close() {
      for (const p of pending.values()) p.reject(new NetlinkError('socket closed', 0));
      pending.clear();
      cmd.close();
      mon.close();
    },
  };
}
