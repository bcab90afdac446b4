// Tenants have root: whatever they do to table inet hostnet is noticed from
// nf_tables notifications (no listing), repaired within a second, and
// counted. Other tables are theirs; a foreign input chain with policy drop is
// reported as a coexistence warning.
import t from 'tap';
import { Lab, listen, probe, type Netns } from '../../lab/index.js';
import { FirewallClient, tableText } from '../../fixtures/drivers.js';
import { loadPolicy } from '../../fixtures/goldens.js';

const HOST = '10.1.0.11';

async function handleOf(ns: Netns, chain: string, comment: string): Promise<string> {
  const { stdout } = await ns.exec(['nft', '-a', 'list', 'chain', 'inet', 'hostnet', chain]);
  const line = stdout.split('\n').find((l) => l.includes(comment));
  const m = /# handle (\d+)/.exec(line ?? '');
  if (!m?.[1]) throw new Error(`no rule with ${comment} in ${chain}`);
  return m[1];
}

void t.test('tampering is repaired within 1 s and counted', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const host = await lab.netns('host');
  const client = await lab.netns('client');
  await lab.link(host, 'eth0', client, 'eth0');
  await host.addAddress('lo', `${HOST}/32`);
  await client.addAddress('eth0', '192.168.50.7/32');
  await client.route(`${HOST}/32`, ['dev', 'eth0']);
  await host.route('192.168.50.7/32', ['dev', 'eth0']);
  await listen(host, 'tcp', HOST, 22);
  await listen(host, 'tcp', HOST, 23);

  const fw = FirewallClient.start(host);
  t.teardown(() => fw.stop());
  t.match(await fw.policy(loadPolicy('hosts-v6')), { ok: true });
  t.match(await fw.watch(), { ok: true });
  const applied = await tableText(host);
  t.equal(await probe(client, 'tcp', HOST, 22), 'connected', 'admins reach ssh (object admins)');
  t.equal(await probe(client, 'tcp', HOST, 23, { timeoutMs: 500 }), 'timeout', 'other ports are dropped');

  const scenarios: [string, () => Promise<unknown>][] = [
    ['nft flush ruleset', () => host.exec(['nft', 'flush', 'ruleset'])],
    ['table deleted', () => host.exec(['nft', 'delete', 'table', 'inet', 'hostnet'])],
    ['chain emptied and deleted', () => host.exec(['nft', '-f', '-'], { stdin: 'flush chain inet hostnet input\ndelete chain inet hostnet input\n' })],
    ['a rule added by hand', () => host.exec(['nft', 'insert', 'rule', 'inet', 'hostnet', 'acl', 'tcp', 'dport', '23', 'accept'])],
    ['a rule removed by hand', async () => host.exec(['nft', 'delete', 'rule', 'inet', 'hostnet', 'acl', 'handle', await handleOf(host, 'acl', 'rule:ssh-admins')])],
    ['a set element removed', () => host.exec(['nft', 'delete', 'element', 'inet', 'hostnet', 'o4_admins_32', '{ 192.168.50.7 }'])],
    ['the policy of the base chain flipped to accept', () => host.exec(['nft', 'add', 'chain', 'inet', 'hostnet', 'input', '{ type filter hook input priority filter; policy accept; }'])],
  ];
  let n = 0;
  for (const [what, tamper] of scenarios) {
    n++;
    await tamper();
    const started = Date.now();
    const ev = await fw.waitEvent('firewall-drift-repaired', n, 3000).catch(() => undefined);
    const ms = Date.now() - started;
    t.ok(ev, `${what}: repaired`);
    t.ok(ms <= 1000, `${what}: within 1 s (${ms} ms)`);
    t.equal(await tableText(host), applied, `${what}: the table is exactly as applied again`);
  }
  t.equal((await fw.status()).result?.repairs, scenarios.length, 'each repair counted once');
  t.equal(await probe(client, 'tcp', HOST, 22), 'connected', 'ssh still allowed');
  t.equal(await probe(client, 'tcp', HOST, 23, { timeoutMs: 500 }), 'timeout', 'the hand-added accept is gone');

  // Other tables are the tenant's: no repair, but a drop-policy input chain is a warning.
  await host.exec(['nft', '-f', '-'], { stdin: 'table ip tenant {\n chain INPUT {\n  type filter hook input priority 10; policy drop;\n }\n}\n' });
  const warn = await fw.waitEvent('foreign-drop-chain', 1, 3000);
  t.match(warn.detail, /table ip tenant chain INPUT has policy drop/, 'coexistence warning names the chain');
  await host.exec(['nft', 'add', 'rule', 'ip', 'tenant', 'INPUT', 'accept']);
  await new Promise((r) => setTimeout(r, 300));
  t.equal((await fw.status()).result?.repairs, scenarios.length, 'changes to other tables are not repaired');
  t.match((await host.exec(['nft', 'list', 'table', 'ip', 'tenant'])).stdout, /accept/, 'and are left as the tenant made them');
});
