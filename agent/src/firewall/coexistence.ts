// Other tables that drop what hostnet's table accepts. nftables evaluates
// every base chain of a hook: a packet hostnet's ACL accepts is still dropped
// by another table's input chain with policy drop, or by a drop or reject
// rule in it (iptables-nft rules live in table ip filter, chain INPUT). Those
// tables are the tenant's and never touched; they are named, so that the
// tenant knows what to remove. Pure.

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

interface Chain {
  readonly family: string;
  readonly table: string;
  readonly name: string;
  readonly hook: string;
  readonly policy: string;
}

/** Whether an expression list ends in drop or reject, and where it jumps. */
function verdicts(expr: unknown): { drops: boolean; jumps: string[] } {
  let drops = false;
  const jumps: string[] = [];
  for (const e of Array.isArray(expr) ? expr : []) {
    const x = obj(e);
    if ('drop' in x || 'reject' in x) drops = true;
    for (const k of ['jump', 'goto']) if (k in x) jumps.push(str(obj(x[k]).target));
  }
  return { drops, jumps };
}

/**
 * One sentence per foreign input base chain that drops traffic, from
 * `nft -j list ruleset`: "table ip filter chain INPUT (iptables) has policy
 * drop", "... drops in 2 rules". `ownTable` (family inet) is left out.
 */
export function foreignDrops(ruleset: unknown, ownTable: string): string[] {
  const items = (obj(ruleset).nftables as unknown[] | undefined) ?? [];
  const chains: Chain[] = [];
  const rules = new Map<string, { drops: boolean; jumps: string[] }[]>();
  const key = (family: string, table: string, chain: string): string => `${family} ${table} ${chain}`;
  for (const it of items) {
    const c = obj(obj(it).chain);
    if (c.name !== undefined) chains.push({ family: str(c.family), table: str(c.table), name: str(c.name), hook: str(c.hook), policy: str(c.policy) });
    const r = obj(obj(it).rule);
    if (r.chain !== undefined) {
      const k = key(str(r.family), str(r.table), str(r.chain));
      rules.set(k, [...(rules.get(k) ?? []), verdicts(r.expr)]);
    }
  }
  /** Drop or reject rules in a chain and the chains it jumps to. */
  const dropRules = (family: string, table: string, chain: string, seen = new Set<string>()): number => {
    const k = key(family, table, chain);
    if (seen.has(k)) return 0;
    seen.add(k);
    return (rules.get(k) ?? []).reduce((n, r) => n + (r.drops ? 1 : 0) + r.jumps.reduce((m, j) => m + dropRules(family, table, j, seen), 0), 0);
  };
  const out: string[] = [];
  for (const c of chains) {
    if (c.hook !== 'input' || (c.family === 'inet' && c.table === ownTable)) continue;
    const iptables = c.table === 'filter' && c.name === 'INPUT' && (c.family === 'ip' || c.family === 'ip6') ? ' (iptables)' : '';
    const n = dropRules(c.family, c.table, c.name);
    const what = [c.policy === 'drop' ? 'has policy drop' : '', n > 0 ? `drops in ${n} rule${n > 1 ? 's' : ''}` : ''].filter(Boolean).join(' and ');
    if (what) out.push(`table ${c.family} ${c.table} chain ${c.name}${iptables} ${what}`);
  }
  return out;
}
