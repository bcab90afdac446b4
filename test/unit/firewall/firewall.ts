// The Firewall service over fake seams: which transaction goes where, state
// kept on rejection, drift notifications lead to one atomic repair.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { silentLogger } from '../../../common/log.js';
import { Firewall, type FirewallEvent } from '../../../agent/src/firewall/firewall.js';
import { NftRejectedError, type NftCli } from '../../../agent/src/firewall/nft-cli.js';
import type { NftNetlink, NftNetlinkHandlers } from '../../../agent/src/firewall/nft-netlink.js';
import { NftMsg, type ElementOp } from '../../../agent/src/firewall/nfnetlink.js';
import type { Line } from '../../../agent/src/firewall/render.js';
import { FirewallDeltaSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { loadPolicy } from '../../fixtures/goldens.js';

function harness() {
  const nftCalls: (readonly Line[])[] = [];
  const netlinkCalls: (readonly ElementOp[])[] = [];
  const events: FirewallEvent[] = [];
  let gen = 1;
  let rejectNext = false;
  let concurrentNext = false;
  let handlers: NftNetlinkHandlers | undefined;
  const listening: boolean[] = [];
  let foreignRuleset: unknown = { nftables: [{ chain: { family: 'ip', table: 'tenant', name: 'INPUT', hook: 'input', policy: 'drop' } }] };
  const nft: NftCli = {
    async apply(lines) {
      if (rejectNext) { rejectNext = false; throw new NftRejectedError('rule web', 'Could not process rule: Invalid argument', 3); }
      nftCalls.push(lines); gen++;
      if (concurrentNext) { concurrentNext = false; gen++; }
    },
    async check() { /* unused */ },
    async listTable() { return undefined; },
    async listRuleset() { return foreignRuleset; },
  };
  const netlink: NftNetlink = {
    async applyElements(ops) { netlinkCalls.push(ops); gen++; },
    async generation() { return gen; },
    listen(on) { listening.push(on); },
    close() { /* nothing */ },
  };
  const log = silentLogger();
  const fw = new Firewall({
    nft, log, onEvent: (e) => events.push(e),
    openNetlink: (h) => { handlers = h; return netlink; },
  });
  return {
    fw, nftCalls, netlinkCalls, events, listening,
    reject: () => { rejectNext = true; },
    /** The next apply is accompanied by another process's commit. */
    concurrentCommit: () => { concurrentNext = true; },
    notify: (...evs: Parameters<NftNetlinkHandlers['onEvent']>[0][]) => { for (const e of evs) handlers?.onEvent(e); },
    /** What `nft -j list ruleset` shows from now on. */
    ruleset: (r: unknown) => { foreignRuleset = r; },
  };
}

const delta = (init: Parameters<typeof create<typeof FirewallDeltaSchema>>[1]) => create(FirewallDeltaSchema, init);

void t.test('first apply replaces the table; the same policy again changes nothing', async (t) => {
  const h = harness();
  const r1 = await h.fw.applyPolicy(loadPolicy('hosts-v6'));
  t.equal(r1.via, 'nft');
  t.equal(h.nftCalls[0]?.[1]?.text, 'delete table inet hostnet', 'full atomic replacement');
  const r2 = await h.fw.applyPolicy(loadPolicy('hosts-v6'));
  t.equal(r2.via, 'none');
  t.equal(h.nftCalls.length, 1, 'nothing sent the second time');
});

void t.test('a prefix delta goes over netlink as element changes only', async (t) => {
  const h = harness();
  await h.fw.applyPolicy(loadPolicy('hosts-v6'));
  const r = await h.fw.applyDelta(delta({
    baseVersion: 'hosts-v6-1', version: 'v2',
    objectChanges: [{ id: 'monitoring', added: ['10.210.0.0/16', '10.200.0.0/16'], removed: ['10.99.0.0/16'] }],
  }));
  t.equal(r.via, 'netlink');
  t.equal(r.version, 'v2');
  t.same(h.netlinkCalls[0]?.map((op) => [op.set, op.add, op.remove]), [['o4_monitoring_16', [0x0ad20000], []]],
    'only the new element: the present prefix and the absent removal are no-ops');
  t.ok(h.listening.length > 0 && h.listening.every((on) => !on), 'notifications muted during our own commits (and not re-enabled: not watching)');
  const stale = await h.fw.applyDelta(delta({ baseVersion: 'hosts-v6-1', version: 'v3' })).then(() => null, (e: unknown) => e);
  t.match(stale, { field: 'base_version' }, 'a delta on the wrong base is refused');
  const bad = await h.fw.applyDelta(delta({ baseVersion: 'v2', version: 'v3', objectChanges: [{ id: 'monitoring', added: ['10.0.0.0/33'] }] }))
    .then(() => null, (e: unknown) => e);
  t.match(bad, { field: 'object_changes[0].added[0]' });
  const gone = await h.fw.applyDelta(delta({ baseVersion: 'v2', version: 'v3', objectChanges: [{ id: 'admins', removed: ['192.168.50.7/32'] }] }))
    .then(() => null, (e: unknown) => e);
  t.match(gone, { field: 'object_changes[0].removed' }, 'an object may not become empty');
  t.equal(h.fw.version, 'v2', 'refused deltas change nothing');
});

void t.test('a delta with rules is merged and diffed', async (t) => {
  const h = harness();
  const p = loadPolicy('hosts-v6');
  await h.fw.applyPolicy(p);
  const r = await h.fw.applyDelta(delta({ baseVersion: 'hosts-v6-1', version: 'v2', rules: { rules: p.rules.slice(0, 2) } }));
  t.equal(r.via, 'nft');
  t.equal(h.nftCalls[1]?.[0]?.text, 'flush chain inet hostnet acl');
});

void t.test('a rejected policy leaves the applied state as it was', async (t) => {
  const h = harness();
  await h.fw.applyPolicy(loadPolicy('hosts-v6'));
  h.reject();
  const err = await h.fw.applyPolicy(loadPolicy('mixed')).then(() => null, (e: unknown) => e);
  t.ok(err instanceof NftRejectedError);
  t.equal(h.fw.version, 'hosts-v6-1');
  const again = await h.fw.applyPolicy(loadPolicy('hosts-v6'));
  t.equal(again.via, 'none', 'the old policy is still what is applied');
});

void t.test('someone else\'s change to our table is repaired once, atomically, and counted', async (t) => {
  const h = harness();
  await h.fw.applyPolicy(loadPolicy('deny-all'));
  await h.fw.watch();
  t.match(h.events[0], { kind: 'foreign-drop-chain', detail: /table ip tenant chain INPUT has policy drop/ }, 'a foreign input chain with policy drop is reported, by name');
  t.same(h.fw.warnings, ['table ip tenant chain INPUT has policy drop']);
  h.notify(
    { kind: 'change', msg: NftMsg.DELRULE, family: 1, table: 'hostnet' },
    { kind: 'change', msg: NftMsg.DELSETELEM, family: 1, table: 'hostnet' },
    { kind: 'gen', id: 9, pid: 999, process: 'nft' },
  );
  await new Promise((r) => setTimeout(r, 100));
  t.equal(h.fw.repairs, 1, 'one repair for one foreign transaction');
  t.equal(h.nftCalls.at(-1)?.[1]?.text, 'delete table inet hostnet', 'repair re-applies the whole table atomically');
  t.match(h.events.at(-1), { kind: 'firewall-drift-repaired', detail: /nft \(pid 999\)/ });
  h.ruleset({ nftables: [] });
  h.notify({ kind: 'change', msg: NftMsg.DELTABLE, family: 2, table: 'tenant' }, { kind: 'gen', id: 10, pid: 5, process: 'nft' });
  await new Promise((r) => setTimeout(r, 100));
  t.equal(h.fw.repairs, 1, 'changes to other tables are none of our business');
  t.same(h.fw.warnings, [], 'but the tenant\'s table going away clears the warning');
  t.match(h.events.at(-1), { kind: 'foreign-drop-cleared', detail: 'table ip tenant chain INPUT no longer drops input' });
  h.fw.close();
});

void t.test('a foreign commit between our generation reads triggers a check', async (t) => {
  const h = harness();
  await h.fw.applyPolicy(loadPolicy('deny-all'));
  await h.fw.watch();
  await h.fw.applyPolicy(loadPolicy('mixed'));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(h.fw.repairs, 0, 'our own commit alone is not drift');
  h.concurrentCommit();
  await h.fw.applyPolicy(loadPolicy('hosts-v6'));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(h.fw.repairs, 1, 'two new generations around ours: checked and repaired');
  h.fw.close();
});
