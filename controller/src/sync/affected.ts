// Which hosts a committed change can alter the compiled state of, so that a
// change costs what it touches: a host's own record; its subnet (addresses,
// prefixes) and the subnets whose ACL names it as a source; its subnet's ACL;
// the objects its ACL uses; its catalog. Tenants compile into nothing. Pure
// apart from reads through the Reader (of the snapshot after the change).
import type { Change, Reader } from '../store/store.js';

/**
 * The hosts (by id) whose policy or intent may differ after `changes`, each
 * with whether its routing intent may too (false: only its firewall policy,
 * as for object and ACL changes). Deleted hosts are included.
 */
export function affectedHosts(store: Reader, changes: readonly Change[]): Map<string, boolean> {
  const hosts = new Map<string, boolean>();
  const mark = (id: string, routing: boolean): void => { hosts.set(id, routing || (hosts.get(id) ?? false)); };
  /** Subnets whose hosts' firewall changes, and whether their routing does too. */
  const subnets = new Map<string, boolean>();
  const catalogs = new Set<string>();
  const objects = new Set<string>();
  const sourceSubnets = new Set<string>();
  for (const c of changes) {
    if (c.kind === 'host') mark(c.key, true);
    else if (c.kind === 'acl') subnets.set(c.key, subnets.get(c.key) ?? false);
    else if (c.kind === 'subnet') {
      // Its prefixes are its hosts' address pools (routing) and a source in other subnets' ACLs.
      subnets.set(c.key, true);
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
      if (uses) subnets.set(a.key, subnets.get(a.key) ?? false);
    }
  }
  if (subnets.size > 0 || catalogs.size > 0) {
    for (const h of store.list('host')) {
      const bySubnet = subnets.get(h.value.subnetId);
      const byCatalog = catalogs.has(h.value.catalog);
      if (bySubnet !== undefined || byCatalog) mark(h.key, byCatalog || bySubnet === true);
    }
  }
  return hosts;
}
