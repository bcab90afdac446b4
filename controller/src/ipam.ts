// Host addresses: each host's vni0 /32 (and /128 when its subnet has an IPv6
// prefix) comes from its subnet, a public /32 from the public pool when its
// catalog has a public network. Allocation is the lowest free address
// (network and broadcast addresses, and the IPv6 subnet-router anycast
// address, excluded), done inside the store transaction that creates the
// host, so two hosts can never get the same address; deleting the host
// returns it. A live host's addresses never change unless an operator names
// new ones.
//
// AddressIndex is what the store's snapshot keeps for that: who holds each
// address, and every held address in sorted order per family, so that the
// lowest free one of a pool is a binary search, not a scan of every host (a
// create at 10,000 hosts cost 7.6 ms with the scan, against 0.3 ms at 100).
import { status as Status } from '@grpc/grpc-js';
import { HostnetError } from '../../proto/grpc/errors.js';
import { formatAddress, parsePrefix } from '../../common/prefix.js';
import type { Host } from '../../proto/gen/hostnet/v1/resources_pb.js';

/** Every address a host holds. */
export const addressesOf = (h: Host | undefined): string[] => (h ? [...h.addresses, ...h.publicAddresses] : []);

export const poolExhausted = (what: string, pool: string): HostnetError =>
  new HostnetError(Status.FAILED_PRECONDITION, { reason: 'POOL_EXHAUSTED', resource: what, message: `${what} (${pool}) has no free address left` });

/** How many candidates an IPv6 allocation looks at before calling a pool full (a /64 never is). */
const V6_SCAN = 1n << 20n;

/** The first index of `xs` (sorted) whose value is >= v. */
function lowerBound(xs: readonly bigint[], v: bigint): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((xs[mid] as bigint) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The host addresses a pool hands out: [first, last]. */
export function poolRange(pool: string): { family: 4 | 6; first: bigint; last: bigint; bits: number } {
  const p = parsePrefix(pool);
  const bits = p.family === 4 ? 32 : 128;
  const size = 1n << BigInt(bits - p.len);
  // A /31 or /32 (/127, /128) has no network/broadcast (subnet-router) address to skip.
  const first = p.addr + (size > 2n ? 1n : 0n);
  let last = p.addr + (p.family === 4 && size > 2n ? size - 2n : size - 1n);
  if (last - first >= V6_SCAN) last = first + V6_SCAN - 1n;
  return { family: p.family, first, last, bits };
}

export class AddressIndex {
  private readonly owners = new Map<string, string>();
  private readonly sorted: Record<4 | 6, bigint[]> = { 4: [], 6: [] };

  /** The host holding `address` (a /32 or /128), if any. */
  owner(address: string): string | undefined {
    return this.owners.get(address);
  }

  /** Records that `host` holds `address` (it holds it already: nothing changes). */
  add(address: string, host: string): void {
    if (this.owners.has(address)) {
      this.owners.set(address, host);
      return;
    }
    this.owners.set(address, host);
    const p = parsePrefix(address);
    const xs = this.sorted[p.family];
    xs.splice(lowerBound(xs, p.addr), 0, p.addr);
  }

  remove(address: string): void {
    if (!this.owners.delete(address)) return;
    const p = parsePrefix(address);
    const xs = this.sorted[p.family];
    const i = lowerBound(xs, p.addr);
    if (xs[i] === p.addr) xs.splice(i, 1);
  }

  /** Replaces what `host` holds: `before` -> `after`. */
  replace(host: string, before: readonly string[], after: readonly string[]): void {
    for (const a of before) if (!after.includes(a) && this.owners.get(a) === host) this.remove(a);
    for (const a of after) this.add(a, host);
  }

  clear(): void {
    this.owners.clear();
    this.sorted[4].length = 0;
    this.sorted[6].length = 0;
  }

  /**
   * The lowest address of `pool` no host holds and not in `skip`
   * (canonical, with its length); undefined when the pool is full. O(log n)
   * per skipped address.
   */
  lowestFree(pool: string, skip: ReadonlySet<string> = new Set()): string | undefined {
    const r = poolRange(pool);
    const xs = this.sorted[r.family];
    let start = r.first;
    while (start <= r.last) {
      // Held addresses from `start` on are xs[i], xs[i+1], ...: the first gap is where xs[i+k] > start + k.
      const i = lowerBound(xs, start);
      let lo = 0;
      let hi = lowerBound(xs, r.last + 1n) - i;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((xs[i + mid] as bigint) === start + BigInt(mid)) lo = mid + 1;
        else hi = mid;
      }
      const candidate = start + BigInt(lo);
      if (candidate > r.last) return undefined;
      const text = `${formatAddress(r.family, candidate)}/${r.bits}`;
      if (!skip.has(text)) return text;
      start = candidate + 1n;
    }
    return undefined;
  }
}
