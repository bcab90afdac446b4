// Creating and replacing hosts: the addresses a host keeps, the ones IPAM
// allocates, validation and the uniqueness of every address, all inside one
// store transaction. A host keeps its addresses for its whole life: a
// manifest that leaves them out (a re-apply, provisioning sending the same
// host again) keeps what the host has; only addresses an operator names
// replace them, and those are checked like any other.
import { clone } from '@bufbuild/protobuf';
import { invalidArgument } from '../../proto/grpc/errors.js';
import { type Host, HostSchema } from '../../proto/gen/hostnet/v1/resources_pb.js';
import { contains, parsePrefix } from '../../common/prefix.js';
import { poolExhausted } from './ipam.js';
import type { Reader } from './store/store.js';
import { type Caller, type HostRules, hostAddresses, validateHost } from './validate.js';

const family = (a: string): 4 | 6 => (a.includes(':') ? 6 : 4);
const inside = (pool: string, a: string): boolean => Boolean(pool) && contains(parsePrefix(pool), parsePrefix(a));

/**
 * The host `h` as it is to be stored: the addresses it names, else those it
 * has (`existing`, when they still fit its subnet), else new ones from IPAM;
 * validated and checked against every other host's addresses. Throws
 * HostnetError; pure apart from reads.
 */
export function prepareHost(store: Reader, h: Host, caller: Caller, existing: Host | undefined, rules: HostRules = {}): Host {
  // A copy: create() of a message returns that very message, and a retried transaction must not see this run's allocations.
  const host = clone(HostSchema, h);
  const subnet = store.get('subnet', host.subnetId)?.value;
  const catalog = store.get('catalog', host.catalog)?.value;
  if (caller.role !== 'operator' || !subnet || !catalog) return validateHost(host, store, caller, rules);
  // Named addresses are well-formed before anything is derived from them.
  hostAddresses('host.addresses', host.addresses);
  hostAddresses('host.public_addresses', host.publicAddresses);
  // Named addresses are checked first: a taken one is an error, never silently replaced.
  [...host.addresses, ...host.publicAddresses].forEach((a, i) => {
    const owner = store.hostOfAddress(a);
    const n = host.addresses.length;
    if (owner !== undefined && owner !== host.id) {
      const released = owner.startsWith('released/') ? owner.slice('released/'.length) : undefined;
      throw invalidArgument(i < n ? `host.addresses[${i}]` : `host.public_addresses[${i - n}]`, released
        ? `${a} is still host ${released}'s: it was released, and its switches have not all applied the release yet`
        : `${a} is in use by host ${owner}`);
    }
  });
  const taken = new Set([...host.addresses, ...host.publicAddresses]);
  const keepOrAllocate = (list: string[], kept: readonly string[], pool: string, what: string): void => {
    const have = kept.find((a) => inside(pool, a));
    const a = have ?? store.lowestFreeAddress(pool, taken);
    if (a === undefined) throw poolExhausted(what, pool);
    taken.add(a);
    list.push(a);
  };
  // Per family: the address named, else the one the host has, else a new one.
  for (const [f, pool] of [[4, subnet.prefixV4], [6, subnet.prefixV6]] as const) {
    if (pool && !host.addresses.some((a) => family(a) === f)) {
      keepOrAllocate(host.addresses, existing?.addresses.filter((a) => family(a) === f) ?? [], pool, `subnet/${host.subnetId}`);
    }
  }
  if (host.addresses.length > h.addresses.length) host.addresses.sort((a, b) => family(a) - family(b));
  if (host.publicAddresses.length === 0 && existing && existing.publicAddresses.length > 0) {
    host.publicAddresses = [...existing.publicAddresses];
  } else if (host.publicAddresses.length === 0 && catalog.networks.some((n) => n.name === 'public')) {
    if (!rules.publicPool) throw invalidArgument('host.public_addresses', `catalog ${host.catalog} has a public network but the controller has no public pool configured`);
    keepOrAllocate(host.publicAddresses, [], rules.publicPool, 'the public pool');
  }
  return validateHost(host, store, caller, rules);
}
