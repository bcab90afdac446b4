// Which hosts a committed change can alter the compiled state of, so that a
// change costs what it touches: a host's own record; its subnet (addresses,
// prefixes) and the subnets whose ACL names it as a source; its subnet's ACL;
// the objects its ACL uses; its catalog. Tenants compile into nothing. Pure
// apart from reads through the Reader (of the snapshot after the change).
import type { Change, Reader } from '../store/store.js';

/** The hosts (by id) whose policy or intent may differ after `changes`. Deleted hosts are included. */
export function affectedHosts(store: Reader, changes: readonly Change[]): Set<string> {
  const hosts = new Set<string>();
  const subnets = new Set<string>();
  const catalogs = new Set<string>();
  const objects = new Set<string>();
  const sourceSubnets = new Set<string>();
  for (const c of changes) {
    if (c.kind === 'host') hosts.add(c.key);
    else if (c.kind === 'acl') subnets.add(c.key);
    else if (c.kind === 'subnet') {
      subnets.add(c.key);
      sourceSubnets.add(c.key);
    } else if (c.kind === 'object') objects.add(c.key);
    else if (c.kind === 'catalog') catalogs.add(c.key);
  }
  if (objects.size > 0 || sourceSubnets.size > 0) {
    for (const a of store.list('acl')) {
      const uses = a.value.rules.some((r) => {
        const s = r.source?.kind;
        return (s?.case === 'objectId' && objects.has(s.value)) || (s?.case === 'subnetId' && sourceSubnets.has(s.value));
      });
      if (uses) subnets.add(a.key);
    }
  }
  if (subnets.size > 0 || catalogs.size > 0) {
    for (const h of store.list('host')) {
      if (subnets.has(h.value.subnetId) || catalogs.has(h.value.catalog)) hosts.add(h.key);
    }
  }
  return hosts;
}
