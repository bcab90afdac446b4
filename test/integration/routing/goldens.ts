// Every frr.conf golden is what FRR prints back: loaded into a real FRR
// through frr-reload, a second frr-reload --test finds nothing to change
// (so a re-apply never touches a session).
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Frr, Lab, run } from '../../lab/index.js';
import { FrrApplier, isEmptyDiff } from '../../../agent/src/routing/frr-apply.js';
import { validateIntent } from '../../../agent/src/routing/intent.js';
import { GOLDEN_INTERFACES, frrGoldenPath, intentNames, loadIntent } from '../../fixtures/goldens.js';

void t.test('goldens round-trip through a real FRR', async (t) => {
  for (const name of intentNames()) {
    const lab = await Lab.create();
    try {
      const host = await lab.netns('host');
      const peer = await lab.netns('peer');
      for (const i of [0, 1, 2, 3]) await lab.link(host, `eth${i}`, peer, `p${i}`);
      const intent = validateIntent(loadIntent(name), GOLDEN_INTERFACES);
      for (const n of intent.networks) {
        await host.exec(['ip', 'link', 'add', n.loopback, 'type', 'bridge']);
        await host.up(n.loopback);
        for (const a of [...n.v4, ...n.v6]) await host.addAddress(n.loopback, a);
      }
      const frr = await Frr.start(host, { config: 'frr defaults datacenter\n', bgpPort: 0 });
      await writeFile(join(frr.dir, 'vtysh.conf'), '');
      const applier = new FrrApplier(run, { confDir: frr.dir, runDir: frr.dir, vtySocket: frr.dir });
      const text = readFileSync(frrGoldenPath(name), 'utf8');
      const applied = await applier.apply(text);
      t.notOk(isEmptyDiff(applied), `${name}: the first apply changed FRR`);
      t.same(await applier.diff(text), { add: [], remove: [] }, `${name}: frr-reload --test finds nothing to change afterwards`);
      t.equal(readFileSync(join(frr.dir, 'frr.conf'), 'utf8'), text, `${name}: frr.conf for the next start is the golden`);
    } finally {
      await lab.teardown();
    }
  }
});
