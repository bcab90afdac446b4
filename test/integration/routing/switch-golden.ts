// The switch golden is what FRR prints back: loaded into a real FRR (a ToR
// namespace with the golden's ports) through frr-reload, a second
// frr-reload --test finds nothing to change, so re-applying a switch's
// configuration never touches a session.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Frr, Lab, run } from '../../lab/index.js';
import { FrrApplier, isEmptyDiff } from '../../../agent/src/routing/frr-apply.js';
import { SWITCH_GOLDEN_INTENT, switchGoldenPath } from '../../fixtures/goldens.js';

void t.test('the switch golden round-trips through a real FRR', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const tor = await lab.netns('tor');
  const peer = await lab.netns('peer');
  const s = SWITCH_GOLDEN_INTENT;
  for (const [i, port] of [...s.routed.map((r) => r.port), ...s.pool, ...s.fabric].entries()) await lab.link(tor, port, peer, `p${i}`);
  const frr = await Frr.start(tor, { config: 'frr defaults datacenter\n', bgpPort: 0 });
  const applier = new FrrApplier(run, { confDir: frr.dir, runDir: frr.dir, vtySocket: frr.dir });
  const text = readFileSync(switchGoldenPath(), 'utf8');
  t.notOk(isEmptyDiff(await applier.apply(text)), 'the first apply changed FRR');
  t.same(await applier.diff(text), { add: [], remove: [] }, 'frr-reload --test finds nothing to change afterwards');
  t.equal(readFileSync(join(frr.dir, 'frr.conf'), 'utf8'), text, 'frr.conf for the next start is the golden');
});
