// Host addresses: each host's vni0 /32 comes from its subnet, a public /32
// from the public pool when its catalog has a public network. Allocation is
// the lowest free address (network and broadcast addresses excluded), done
// inside the store transaction that creates the host, so two hosts can never
// get the same address; deleting the host returns it.
import { HostnetError } from '../../proto/grpc/errors.js';
import { status as Status } from '@grpc/grpc-js';
import { formatAddress, parsePrefix } from '../../common/prefix.js';
import type { Reader } from './store/store.js';

/** Every /32 and /128 any host holds, with the host that holds it. */
export function addressesInUse(store: Reader): Map<string, string> {
  const used = new Map<string, string>();
  for (const h of store.list('host')) for (const a of [...h.value.addresses, ...h.value.publicAddresses]) used.set(a, h.key);
  return used;
}

/**
 * The lowest free IPv4 /32 of `pool` (canonical prefix). Throws
 * FAILED_PRECONDITION when the pool is exhausted. Pure.
 */
export function allocateV4(pool: string, used: ReadonlyMap<string, string> | ReadonlySet<string>, what: string): string {
  const p = parsePrefix(pool);
  const size = 1n << BigInt(32 - p.len);
  // A /31 or /32 has no network/broadcast address to skip.
  const first = size > 2n ? 1n : 0n;
  const last = size > 2n ? size - 2n : size - 1n;
  for (let i = first; i <= last; i++) {
    const a = `${formatAddress(4, p.addr + i)}/32`;
    if (!used.has(a)) return a;
  }
  throw new HostnetError(Status.FAILED_PRECONDITION, { reason: 'POOL_EXHAUSTED', resource: what, message: `${what} (${pool}) has no free address left` });
}
