// A profiling aid (not part of npm run bench): one controller replica on a
// 3-member etcd cluster holding N hosts, restarted K times with no agent, so
// that its start is measured alone on an idle machine: its /healthz from the
// spawn, and the phases in its log (node dist/test/bench/start-profile.js
// 10000 3; BENCH_PROFILE=DIR for CPU profiles of each start).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdCluster } from '../../lab/etcd.js';
import { initCa } from '../../controller/src/identity/ca.js';
import { admin, controller, replicaStore, seedBase, seedHosts, startupPhases } from './fleet.js';

const n = Number(process.argv[2] ?? 10_000);
const starts = Number(process.argv[3] ?? 3);
const dir = await mkdtemp(join(tmpdir(), 'hostnet-fleet-'));
await initCa(join(dir, 'tls'), ['127.0.0.1']);
const cluster = await EtcdCluster.start(join(dir, 'etcd'), `hnsp${process.pid}`);
try {
  const r = await controller(dir, 'r1', replicaStore(cluster));
  const a = admin(r, dir);
  await seedBase(a);
  await seedHosts(a, 0, n);
  a.client.close();
  for (let k = 0; k < starts; k++) {
    await new Promise((x) => { r.child.once('exit', x); r.child.kill(process.env.BENCH_PROFILE ? 'SIGTERM' : 'SIGKILL'); });
    const servingMs = await r.start();
    await new Promise((x) => setTimeout(x, 3000));
    process.stdout.write(`start ${k + 1} at ${n} hosts: /healthz ${servingMs.toFixed(0)} ms from the spawn; ${await startupPhases(join(dir, 'r1.log'))}\n`);
  }
  r.child.kill('SIGKILL');
} finally {
  await cluster.stop();
  await rm(dir, { recursive: true, force: true });
}
