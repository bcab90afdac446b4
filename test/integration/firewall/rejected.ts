// A policy the kernel refuses changes nothing. nft 1.0.6 accepts everything
// our compiler emits for a valid policy (it even merges overlapping anonymous
// sets), so the refusal here is the production one: the agent's container
// without CAP_NET_ADMIN. The previous ruleset must stay byte for byte, and the
// error must carry nft's message.
import t from 'tap';
import { Lab } from '../../lab/index.js';
import { FirewallClient } from '../../fixtures/drivers.js';
import { loadPolicy } from '../../fixtures/goldens.js';

void t.test('a refused policy leaves the previous ruleset byte for byte', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const host = await lab.netns('host');
  const privileged = FirewallClient.start(host);
  t.teardown(() => privileged.stop());
  t.match(await privileged.policy(loadPolicy('hosts-v6')), { ok: true });
  const before = (await host.exec(['nft', 'list', 'ruleset'])).stdout;
  t.match(before, /table inet hostnet/);

  const unprivileged = FirewallClient.start(host, [], ['setpriv', '--bounding-set', '-net_admin']);
  t.teardown(() => unprivileged.stop());
  const r = await unprivileged.policy(loadPolicy('mixed'));
  t.equal(r.ok, false, 'the apply fails');
  t.equal(r.error?.name, 'NftRejectedError');
  t.match(r.error?.nftMessage, /Operation not permitted/, 'with nft\'s own message');
  t.equal((await host.exec(['nft', 'list', 'ruleset'])).stdout, before, 'the ruleset is exactly as before');

  const after = await privileged.policy(loadPolicy('mixed'));
  t.equal(after.ok, true, 'the privileged agent still applies normally afterwards');
});
