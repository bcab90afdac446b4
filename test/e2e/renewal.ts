// Certificate renewal in the lab, on the production path: every agent
// enrolled with its own key; with certificates that live 12 s (the
// controller's ca.certificateLifetime, shortened for the test) each agent
// renews over its mutual TLS stream about every 8 s and moves the stream to
// the new certificate. While they do, no probe flips and the dashboard never
// shows a host disconnected for more than a moment.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab, freePort, probeLoop } from '../lab/index.js';
import type { HostView } from '../../controller/src/http.js';
import { World } from '../../lab/world.js';

interface Cert { serial: string; notAfter: string; renewals: number }

void t.test('certificates renewed while traffic flows', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const world = await World.build(lab, { grpcPort: await freePort(), httpPort: await freePort(), certificateLifetime: '12s', log: (l) => t.comment(l) });
  t.teardown(() => world.close());
  const ids = [...world.hosts.keys()];
  const certOf = async (id: string): Promise<Cert> => ((await world.agentStatus(id)).controller as { certificate: Cert }).certificate;
  const first = new Map(await Promise.all(ids.map(async (id) => [id, await certOf(id)] as const)));
  for (const [id, c] of first) t.match(c.serial, /^[0-9A-F]+$/, `${id} has its own certificate`);

  const h1 = world.host('h1');
  const h3 = world.host('h3');
  const loop = probeLoop([
    { from: world.client, addr: h1.address, port: 443, want: 'connected' }, { from: world.client, addr: h1.address, port: 8080, want: 'timeout' },
    { from: world.client, addr: h3.address, port: 5432, want: 'timeout' },
  ]);
  t.teardown(() => loop.stop());
  // The dashboard every 100 ms: how long each host was shown disconnected at a stretch, and whether ever stale.
  const since = new Map<string, number>();
  const longest = new Map<string, number>(ids.map((id) => [id, 0]));
  const notOk = new Set<string>();
  const until = performance.now() + 30_000;
  while (performance.now() < until) {
    const now = performance.now();
    for (const h of await world.api<HostView[]>('/api/v1/hosts')) {
      if (h.status !== 'ok') notOk.add(`${h.id} ${h.status}: ${h.checks.filter((c) => c.status !== 'ok').map((c) => `${c.name} ${c.reason}`).join('; ')}`);
      if (h.connected) since.delete(h.id);
      else since.set(h.id, since.get(h.id) ?? now);
      const gap = since.has(h.id) ? now - (since.get(h.id) ?? now) : 0;
      longest.set(h.id, Math.max(longest.get(h.id) ?? 0, gap));
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await loop.stop();
  // When h1's renewals happened, from its log: for whoever reads a failure.
  const log = await readFile(join(lab.dir, 'h1-agent.log'), 'utf8').catch(() => '');
  t.comment(`h1: ${log.split('\n').filter((l) => /certificate renewed|renewal-failed/.test(l)).map((l) => l.slice(0, 160)).join('\n')}`);
  const last = new Map(await Promise.all(ids.map(async (id) => [id, await certOf(id)] as const)));
  for (const id of ids) {
    const c = last.get(id);
    t.ok((c?.renewals ?? 0) >= 3, `${id} renewed ${c?.renewals ?? 0} times since it enrolled (every ~8 s)`);
    t.not(c?.serial, first.get(id)?.serial, `${id} is on a new certificate`);
  }
  t.ok(loop.rounds() > 10, `${loop.rounds()} probe rounds`);
  t.same(loop.flips, [], 'no probe flipped while certificates were renewed');
  const worst = Math.max(...longest.values());
  t.ok(worst < 500, `no host shown disconnected for more than a moment (longest ${Math.round(worst)} ms, sampled every 100 ms)`);
  t.same([...notOk], [], 'every host ok throughout');
});
