// The routing benchmark: render plus no-op check, and from an intent in hand
// to the host /32 in both ToRs' FIBs, each next to what FRR alone takes in
// the same run.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Frr, Lab, fibRoute, run, waitFor } from '../lab/index.js';
import { buildFabric } from '../fixtures/fabric.js';
import { RoutingClient } from '../fixtures/drivers.js';
import { loadIntent, renderFrrGolden } from '../fixtures/goldens.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const HOST = '10.1.0.10/32';

async function inBothFibs(f: Awaited<ReturnType<typeof buildFabric>>, started: number): Promise<number> {
  await waitFor('the host /32 in both ToR FIBs', async () => {
    const [a, b] = await Promise.all([fibRoute(f.tor1, HOST), fibRoute(f.tor2, HOST)]);
    return a && b ? true : undefined;
  }, { timeoutMs: 30_000, intervalMs: 20 });
  return performance.now() - started;
}

export interface RoutingBench {
  noopMs: number;
  reloadTestMs: number;
  toFibMs: number[];
  frrAloneMs: number[];
}

export async function routingBench(rounds = 3): Promise<RoutingBench> {
  const toFib: number[] = [];
  const frrAlone: number[] = [];
  const noop: number[] = [];
  const reloadTest: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // The agent: bare FRR running, intent in hand -> /32 in both FIBs.
    const lab = await Lab.create({ kind: 'b' });
    try {
      const f = await buildFabric(lab, { hostPrefixes: [HOST], hostAsn: 65101 });
      const agent = RoutingClient.start(f.host, f.hostFrr.dir);
      const started = performance.now();
      const r = await agent.apply(loadIntent('ecmp'));
      if (!r.ok) throw new Error(`apply failed: ${r.error?.message ?? ''}`);
      toFib.push(await inBothFibs(f, started));
      for (let i = 0; i < 5; i++) noop.push((await agent.apply(loadIntent('ecmp'))).result?.ms ?? NaN);
      const file = join(f.hostFrr.dir, 'frr.conf');
      const t0 = performance.now();
      await run(['python3', '/usr/lib/frr/frr-reload.py', '--test', '--bindir', '/usr/bin', '--confdir', f.hostFrr.dir,
        '--rundir', f.hostFrr.dir, '--vty_socket', f.hostFrr.dir, file]);
      reloadTest.push(performance.now() - t0);
      await agent.stop();
    } finally {
      await lab.teardown();
    }
    // FRR alone: the same configuration given to FRR at start, loopback ready.
    const lab2 = await Lab.create({ kind: 'b' });
    try {
      const f = await buildFabric(lab2, { hostPrefixes: [HOST], hostAsn: 65101, hostPort: 0 });
      await f.hostFrr.stop();
      await f.host.exec(['ip', 'link', 'add', 'vni0', 'type', 'bridge']);
      await f.host.up('vni0');
      await f.host.addAddress('vni0', HOST);
      await writeFile(join(f.hostFrr.dir, 'frr.conf'), renderFrrGolden('ecmp'));
      const started = performance.now();
      await Frr.start(f.host, { config: renderFrrGolden('ecmp'), bgpPort: 179 });
      frrAlone.push(await inBothFibs(f, started));
    } finally {
      await lab2.teardown();
    }
  }
  return { noopMs: median(noop), reloadTestMs: median(reloadTest), toFibMs: toFib, frrAloneMs: frrAlone };
}
