// Host addresses: each host's vni0 /32 (and /128 when its subnet has an IPv6
// prefix) comes from its subnet, a public /32 from the public pool when its
// catalog has a public network. Allocation is the lowest free address
// (network and broadcast addresses, and the IPv6 subnet-router anycast
// address, excluded), done inside the store transaction that creates the
// host, so two hosts can never get the same address; deleting the host
// returns it. A live host's addresses never change unless an operator names
// new ones.
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

/** How many candidates an IPv6 allocation looks at before calling a pool full (a /64 never is). */
const V6_SCAN = 1n << 20n;

/**
 * The lowest free host address (/32 or /128) of `pool` (canonical prefix).
 * Throws FAILED_PRECONDITION when the pool is exhausted. Pure.
 */
export function allocate(pool: string, used: ReadonlyMap<string, string> | ReadonlySet<string>, what: string): string {
  const p = parsePrefix(pool);
  const bits = p.family === 4 ? 32 : 128;
  const size = 1n << BigInt(bits - p.len);
  // A /31 or /32 (/127, /128) has no network/broadcast (subnet-router) address to skip.
  const first = size > 2n ? 1n : 0n;
  let last = p.family === 4 && size > 2n ? size - 2n : size - 1n;
  if (last - first >= V6_SCAN) last = first + V6_SCAN - 1n;
  for (let i = first; i <= last; i++) {
    const a = `${formatAddress(p.family, p.addr + i)}/${bits}`;
    if (!used.has(a)) return a;
  }
  throw new HostnetError(Status.FAILED_PRECONDITION, { reason: 'POOL_EXHAUSTED', resource: what, message: `${what} (${pool}) has no free address left` });
}
