// Revoking access takes effect: `ct state established accept` lets a flow
// that an old policy admitted pass for as long as it lives (a UDP stream
// refreshes its entry with every packet). After a policy change, the open
// flows into this host are evaluated against the new policy, the way its
// rules are (failsafes, then the ACL in order, first match decides, default
// drop), and the entries of those it no longer admits are deleted one by one,
// by their exact tuple: never a flush. The next packet of such a flow meets
// the new rules. The evaluation is pure; `conntrack` (conntrack-tools) is the
// seam.
import { setTimeout as delay } from 'node:timers/promises';
import { parseAddress } from '../../../common/prefix.js';
import type { Runner } from '../../../common/run.js';
import type { FirewallModel } from './model.js';
import type { ByFamily, ValidRule } from './policy.js';
import type { PrefixSet } from './prefix-set.js';

/** One conntrack entry, by its original direction. */
export interface Flow {
  readonly family: 4 | 6;
  /** "tcp", "udp", "icmp", "icmpv6", or another protocol's name. */
  readonly proto: string;
  readonly src: string;
  readonly dst: string;
  readonly sport: number | undefined;
  readonly dport: number | undefined;
}

/** Entries from `conntrack -L -o extended` (one per line). Pure. */
export function parseConntrack(text: string): Flow[] {
  return text.split('\n').flatMap((line) => {
    const t = line.trim().split(/\s+/);
    if (t[0] !== 'ipv4' && t[0] !== 'ipv6') return [];
    const first = (key: string): string | undefined => t.find((x) => x.startsWith(`${key}=`))?.slice(key.length + 1);
    const src = first('src');
    const dst = first('dst');
    if (!src || !dst || !t[2]) return [];
    const port = (key: string): number | undefined => (first(key) === undefined ? undefined : Number(first(key)));
    return [{ family: t[0] === 'ipv4' ? 4 : 6, proto: t[2] === 'ipv6-icmp' ? 'icmpv6' : t[2], src, dst, sport: port('sport'), dport: port('dport') }];
  });
}

const BFD_PORTS = [3784, 4784];

const inSet = (set: PrefixSet, addr: bigint, family: 4 | 6): boolean => set.contains(family === 4 ? Number(addr) : addr);

function inPrefixes(list: ByFamily, family: 4 | 6, addr: bigint): boolean {
  return (family === 4 ? list.v4 : list.v6).some((p) => {
    const [net = '', len = '0'] = p.split('/');
    const bits = family === 4 ? 32 : 128;
    const shift = BigInt(bits - Number(len));
    return (parseAddress(net).addr >> shift) === (addr >> shift);
  });
}

function ruleMatches(model: FirewallModel, r: ValidRule, f: Flow, src: bigint, dst: bigint): boolean {
  if (r.protocol !== 'any' && r.protocol !== f.proto) return false;
  if (r.ports.length > 0 && (f.dport === undefined || !r.ports.some(([a, b]) => f.dport !== undefined && f.dport >= a && f.dport <= b))) return false;
  if (r.destinations && !inPrefixes(r.destinations, f.family, dst)) return false;
  if (r.source.kind === 'any') return true;
  if (r.source.kind === 'prefixes') return inPrefixes(r.source.prefixes, f.family, src);
  const sets = model.objects.get(r.source.id);
  return sets !== undefined && inSet(f.family === 4 ? sets.v4 : sets.v6, src, f.family);
}

/** Whether the firewall as modelled admits a new flow like `f` (failsafes, then the ACL; default drop). Pure. */
export function admits(model: FirewallModel, f: Flow): boolean {
  const src = parseAddress(f.src).addr;
  const dst = parseAddress(f.dst).addr;
  const fs = model.failsafe;
  if (inSet(f.family === 4 ? model.management.v4 : model.management.v6, src, f.family)) return true;
  const linkLocal = f.family === 6 && (src >> 118n) === 0x3fan;
  if (linkLocal && fs.uplinks.length > 0) {
    if (f.proto === 'tcp' && fs.bgpPort > 0 && f.dport === fs.bgpPort) return true;
    if (f.proto === 'udp' && fs.bfd && f.dport !== undefined && BFD_PORTS.includes(f.dport)) return true;
  }
  for (const r of model.rules) if (ruleMatches(model, r, f, src, dst)) return r.action === 'accept';
  return false;
}

/** The conntrack seam (conntrackCli; fakes in unit tests). */
export interface Conntrack {
  /** Entries whose original destination is `address`. Throws when conntrack cannot list. */
  into(address: string): Promise<Flow[]>;
  /** Deletes the entry whose original direction is exactly this flow; true when there was one. */
  remove(f: Flow): Promise<boolean>;
  /** This host's own addresses (global scope), the destinations of flows into it. */
  localAddresses(): Promise<string[]>;
}

export function conntrackCli(run: Runner): Conntrack {
  return {
    async into(address) {
      const family = address.includes(':') ? 'ipv6' : 'ipv4';
      const r = await run(['conntrack', '-L', '-f', family, '-d', address, '-o', 'extended'], { allowFail: true, timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`conntrack -L failed: ${r.stderr.trim().split('\n').pop() ?? r.code}`);
      return parseConntrack(r.stdout);
    },
    async remove(f) {
      const ports = f.sport !== undefined && f.dport !== undefined ? ['--sport', String(f.sport), '--dport', String(f.dport)] : [];
      // Exit 1 when there is no such entry (it expired meanwhile): nothing to do.
      const r = await run(['conntrack', '-D', '-f', f.family === 4 ? 'ipv4' : 'ipv6', '-p', f.proto, '-s', f.src, '-d', f.dst, ...ports], { allowFail: true, timeoutMs: 10_000 });
      return r.code === 0;
    },
    async localAddresses() {
      const r = await run(['ip', '-j', 'address', 'show'], { timeoutMs: 10_000 });
      const links = JSON.parse(r.stdout) as { addr_info?: { local?: string; scope?: string }[] }[];
      return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.scope === 'global' && a.local).map((a) => a.local as string));
    },
  };
}

/** The same flow seen from this host's side: what conntrack records when this host's packet is the first it sees. */
const reversed = (f: Flow): Flow => ({ ...f, src: f.dst, dst: f.src, sport: f.dport, dport: f.sport });

/** How often, and how far apart, cut flows are looked for again from this host's side. */
export const RECHECKS = 3;
export const RECHECK_MS = 100;

/**
 * Deletes the entries of open flows into this host that `model` no longer
 * admits. Returns how many were looked at and those cut.
 *
 * A reply already on its way out when its flow's entry is deleted makes a
 * new entry, with this host's side as the original direction; the peer's
 * next packet then matches it as established, and the flow lives on (seen
 * in CI: a UDP echo stream kept flowing 10 s after its rule went). So the
 * cut flows with ports are looked for again in that direction, RECHECKS
 * times RECHECK_MS apart, until none is found. Only the exact reversed
 * tuple is deleted: a connection this host opened itself cannot have it.
 */
export async function revokeFlows(ct: Conntrack, model: FirewallModel, sleep: (ms: number) => Promise<unknown> = delay): Promise<{ checked: number; revoked: Flow[] }> {
  const local = await ct.localAddresses();
  const revoked: Flow[] = [];
  let checked = 0;
  for (const address of local) {
    for (const f of await ct.into(address)) {
      checked++;
      // From this host itself (lo): never the ACL's business.
      if (local.includes(f.src) || admits(model, f)) continue;
      await ct.remove(f);
      revoked.push(f);
    }
  }
  const withPorts = revoked.filter((f) => f.sport !== undefined && f.dport !== undefined);
  for (let round = 0; round < RECHECKS && withPorts.length > 0; round++) {
    await sleep(RECHECK_MS);
    let found = false;
    for (const f of withPorts) if (await ct.remove(reversed(f))) found = true;
    if (!found) break;
  }
  return { checked, revoked };
}
