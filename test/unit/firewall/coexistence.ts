// Other tables that drop what hostnet accepts, named from `nft -j list
// ruleset`: policy drop, drop and reject rules (also behind a jump),
// iptables' INPUT chain called so; hostnet's own table and non-input chains
// are not.
import t from 'tap';
import { foreignDrops } from '../../../agent/src/firewall/coexistence.js';

const chain = (family: string, table: string, name: string, hook?: string, policy = 'accept') => ({ chain: { family, table, name, ...(hook ? { hook, type: 'filter', prio: 0, policy } : {}) } });
const rule = (family: string, table: string, chainName: string, expr: object[]) => ({ rule: { family, table, chain: chainName, expr } });

void t.test('foreign input chains that drop are named', async (t) => {
  const ruleset = { nftables: [
    { metainfo: { version: '1.0.6' } },
    chain('inet', 'hostnet', 'input', 'input', 'drop'),
    rule('inet', 'hostnet', 'input', [{ drop: null }]),
    chain('ip', 'filter', 'INPUT', 'input'),
    rule('ip', 'filter', 'INPUT', [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 443 } }, { drop: null }]),
    rule('ip', 'filter', 'INPUT', [{ jump: { target: 'more' } }]),
    chain('ip', 'filter', 'more'),
    rule('ip', 'filter', 'more', [{ reject: { type: 'icmp' } }]),
    chain('inet', 'tenant', 'in', 'input', 'drop'),
    chain('ip', 'nat', 'PREROUTING', 'prerouting', 'drop'),
    chain('ip6', 'quiet', 'in', 'input'),
    rule('ip6', 'quiet', 'in', [{ accept: null }]),
  ] };
  t.same(foreignDrops(ruleset, 'hostnet'), [
    'table ip filter chain INPUT (iptables) drops in 2 rules',
    'table inet tenant chain in has policy drop',
  ]);
  t.same(foreignDrops({ nftables: [chain('inet', 'hostnet', 'input', 'input', 'drop')] }, 'hostnet'), [], 'our own table is ours');
  t.same(foreignDrops({}, 'hostnet'), [], 'an empty listing: nothing');
});
