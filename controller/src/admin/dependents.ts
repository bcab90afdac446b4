// An update must not break what was valid because of the old value: a
// subnet re-prefixed away from its hosts, a host moved out of the subnet
// whose ACL names it, an object or subnet handed to another tenant while an
// ACL uses it, a catalog gaining a public network its hosts have no address
// for. After an update is written (inside its transaction), everything that
// depends on the resource is validated again with the very validators that
// admitted it; the first failure refuses the update, naming the dependent.
import { status as Status } from '@grpc/grpc-js';
import { HostnetError } from '../../../proto/grpc/errors.js';
import type { Host, NetworkObject, Subnet } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import type { Kind, Reader, ResourceOf } from '../store/store.js';
import { type Caller, type HostRules, validateAcl, validateHost } from '../validate.js';

const OPERATOR: Caller = { role: 'operator' };

/** A dependent to validate again: its name and the validation. */
type Check = readonly [string, () => void];

function aclsUsing(store: Reader, match: (src: { case: string | undefined; value?: unknown }) => boolean): Check[] {
  return store.list('acl')
    .filter((a) => a.value.rules.some((r) => match(r.source?.kind ?? { case: undefined })))
    .map((a) => [`acl/${a.key}`, () => { validateAcl(a.value, store, OPERATOR); }] as const);
}

function aclOf(store: Reader, subnetId: string): Check[] {
  const acl = store.get('acl', subnetId);
  return acl ? [[`acl/${subnetId}`, () => { validateAcl(acl.value, store, OPERATOR); }]] : [];
}

function hostsWhere(store: Reader, rules: HostRules, match: (h: Host) => boolean): Check[] {
  return store.list('host').filter((h) => match(h.value))
    .map((h) => [`host/${h.key}`, () => { validateHost(h.value, store, OPERATOR, rules); }] as const);
}

/** The field of the change a broken dependent is blamed on, and the dependents to check. */
function dependents<K extends Kind>(store: Reader, kind: K, before: ResourceOf<K>, after: ResourceOf<K>, rules: HostRules): [string, Check[]] {
  switch (kind) {
    case 'subnet': {
      const [b, a] = [before as Subnet, after as Subnet];
      const field = b.tenantId !== a.tenantId ? 'subnet.tenant_id' : b.prefixV4 !== a.prefixV4 ? 'subnet.prefix_v4' : 'subnet.prefix_v6';
      return [field, [
        ...hostsWhere(store, rules, (h) => h.subnetId === a.id),
        ...aclOf(store, a.id),
        ...aclsUsing(store, (src) => src.case === 'subnetId' && src.value === a.id),
      ]];
    }
    case 'switch':
      return ['switch.ports', hostsWhere(store, rules, (h) => h.switchPorts.some((p) => p.switchName === (after as { name: string }).name))];
    case 'catalog':
      return ['network_catalog.networks', hostsWhere(store, rules, (h) => h.catalog === (after as { name: string }).name)];
    case 'host': {
      const [b, a] = [before as Host, after as Host];
      return ['host.subnet_id', b.subnetId !== a.subnetId ? aclOf(store, b.subnetId) : []];
    }
    case 'object': {
      const [b, a] = [before as NetworkObject, after as NetworkObject];
      const field = b.tenantId !== a.tenantId ? 'network_object.tenant_id' : 'network_object.prefixes';
      return [field, aclsUsing(store, (src) => src.case === 'objectId' && src.value === a.id)];
    }
    default:
      return ['', []];
  }
}

/**
 * Validates again everything that depends on `kind` after it changed from
 * `before` to `after` (already written in `store`). Throws
 * FAILED_PRECONDITION (STILL_REFERENCED) naming the dependent and why.
 */
export function checkDependents<K extends Kind>(store: Reader, kind: K, before: ResourceOf<K>, after: ResourceOf<K>, rules: HostRules): void {
  const [field, checks] = dependents(store, kind, before, after, rules);
  for (const [name, check] of checks) {
    try {
      check();
    } catch (err) {
      if (!(err instanceof HostnetError)) throw err;
      throw new HostnetError(Status.FAILED_PRECONDITION, {
        reason: 'STILL_REFERENCED', field, resource: name, referencedBy: [name],
        message: `${field}: this change would make ${name} invalid (${err.detail.message}); change ${name} first`,
      });
    }
  }
}
