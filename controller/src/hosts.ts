// Creating and replacing hosts: validation, the tenant boundary, address
// allocation (IPAM) and the uniqueness of every address, all inside one store
// transaction.
import { create } from '@bufbuild/protobuf';
import { alreadyExists, invalidArgument } from '../../proto/grpc/errors.js';
import { type Host, HostSchema } from '../../proto/gen/hostnet/v1/resources_pb.js';
import { addressesInUse, allocateV4 } from './ipam.js';
import type { Tx } from './store/store.js';
import { type Caller, validateHost } from './validate.js';

export interface HostOptions {
  /** The public pool (canonical IPv4 prefix) for hosts whose catalog has a public network. */
  readonly publicPool?: string;
}

/**
 * Validates `h`, allocates the addresses it lacks and stores it. `replace`:
 * the host must exist (update) or must not (create). Returns the host as
 * stored. Throws HostnetError; the caller's transaction then stores nothing.
 */
export function putHost(tx: Tx, h: Host, caller: Caller, replace: boolean, options: HostOptions = {}): Host {
  const existing = tx.get('host', h.id);
  if (!replace && existing) throw alreadyExists(`host/${h.id}`);
  const host = create(HostSchema, validateHost(h, tx, caller));
  const used = addressesInUse(tx);
  for (const key of [...used.keys()]) if (used.get(key) === h.id) used.delete(key);
  [...host.addresses, ...host.publicAddresses].forEach((a, i) => {
    const owner = used.get(a);
    if (owner) throw invalidArgument(i < host.addresses.length ? `host.addresses[${i}]` : `host.public_addresses[${i - host.addresses.length}]`, `${a} is in use by host ${owner}`);
  });
  const subnet = tx.get('subnet', host.subnetId);
  const catalog = tx.get('catalog', host.catalog);
  if (subnet && !host.addresses.some((a) => !a.includes(':'))) {
    host.addresses.unshift(allocateV4(subnet.value.prefixV4, used, `subnet/${subnet.key}`));
  }
  const wantsPublic = catalog?.value.networks.some((n) => n.name === 'public') ?? false;
  if (wantsPublic && host.publicAddresses.length === 0) {
    if (!options.publicPool) throw invalidArgument('host.public_addresses', `catalog ${host.catalog} has a public network but the controller has no public pool configured`);
    const inUse = new Set(addressesInUse(tx).keys());
    for (const a of host.addresses) inUse.add(a);
    host.publicAddresses.push(allocateV4(options.publicPool, inUse, 'the public pool'));
  }
  tx.put('host', host.id, host);
  return host;
}
