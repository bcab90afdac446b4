// `npm run lab` as a newcomer uses it (its node part, lab/main.ts; the shell
// wrapper only installs packages and builds): up prints where to look and
// writes the documented topology.json; up again changes nothing; the printed
// commands work; down removes every namespace, process and file. Runs as a
// second lab (own directory, ports and namespace letter) so that a lab a
// developer keeps running on the same machine is never touched.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, run } from '../lab/index.js';
import { type Topology, programsFromDist } from '../../lab/world.js';

// What `npm run lab` runs (dist/lab/main.js) when the tests run our programs compiled; else the sources.
const MAIN = programsFromDist ? [fileURLToPath(new URL('../../dist/lab/main.js', import.meta.url))]
  : ['--import=tsx', fileURLToPath(new URL('../../lab/main.ts', import.meta.url))];

void t.test('npm run lab: up, up again, use, down', async (t) => {
  const dir = join(tmpdir(), `hostnet-lab-cmd-${process.pid}`);
  const env = {
    ...process.env, HOSTNET_LAB_DIR: dir, HOSTNET_LAB_KIND: 'm',
    HOSTNET_LAB_GRPC_PORT: String(await freePort()), HOSTNET_LAB_HTTP_PORT: String(await freePort()),
  };
  const lab = (...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [...MAIN, ...args], { env, timeout: 300_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
  t.teardown(async () => { await lab('down'); });

  const up = await lab();
  t.equal(up.code, 0, `up exits 0 ${up.stderr}`);
  const topo = JSON.parse(await readFile(join(dir, 'topology.json'), 'utf8')) as Topology;
  t.match(up.stdout, new RegExp(`Dashboard API\\s+${topo.controller.http}/api/v1/hosts`), 'prints the API URL');
  t.match(up.stdout, new RegExp(`Admin token\\s+${topo.controller.adminToken}`), 'prints the admin token');
  t.match(up.stdout, /hostnetctl apply -f lab\/examples\/a-web-allow-8080\.yaml/, 'prints commands to try');
  t.match(topo, {
    controller: { grpc: /^127\.0\.0\.1:\d+$/, http: /^http:\/\/127\.0\.0\.1:\d+$/, adminToken: /^lab-admin-/, agentAddresses: [/^100\.\d+\.\d+\.1:\d+$/], ca: /tls\/ca\.pem$/ },
    tors: [{ name: 'tor1', namespace: 'hnmmain-tor1' }, { name: 'tor2', namespace: 'hnmmain-tor2' }],
    client: { namespace: 'hnmmain-client', address: '10.200.0.1' },
    hosts: [
      { id: 'h1', tenant: 'tenant-a', subnet: 'a-web', namespace: 'hnmmain-h1', addresses: ['10.1.0.1/32'] },
      { id: 'h2', tenant: 'tenant-a', subnet: 'a-web', namespace: 'hnmmain-h2', addresses: ['10.1.0.2/32'] },
      { id: 'h3', tenant: 'tenant-b', subnet: 'b-db', namespace: 'hnmmain-h3', addresses: ['10.2.0.1/32'] },
    ],
  }, 'topology.json as documented');

  const again = await lab('up');
  t.equal(again.code, 0);
  t.match(again.stdout, /already up; nothing changed/, 'up again leaves the running lab alone');
  t.equal((JSON.parse(await readFile(join(dir, 'topology.json'), 'utf8')) as Topology).controller.adminToken, topo.controller.adminToken, 'same token');

  const bin = join(dir, 'bin');
  t.match(up.stdout, new RegExp(`HOSTNET_CA=${topo.controller.ca} `), 'prints the CA for hostnetctl');
  const ctl = await run([join(bin, 'hostnetctl'), 'get', 'hosts', '--server', topo.controller.grpc, '--ca', topo.controller.ca, '--token', topo.controller.adminToken]);
  t.match(ctl.stdout, /^h1\s+a-web\s+standard\s+65101\s+tor1\/swp1,tor2\/swp1\s+10\.1\.0\.1\/32,2001:db8:a::1\/128$/m, 'the printed hostnetctl works with the printed token and CA');
  t.match((await run([join(bin, 'lab-probe'), 'client', 'h1', '443'])).stdout, /"connected"/, 'lab-probe client h1 443 connects');
  t.match((await run([join(bin, 'lab-probe'), 'client', 'h1', '8080'])).stdout, /"timeout"/, 'lab-probe client h1 8080 times out');
  const status = await run([join(bin, 'hostnet-agent'), 'status', '--config', topo.hosts[0]?.agentConfig ?? ''], { netns: 'hnmmain-h1', allowFail: true });
  t.match(status.stdout, /^host h1: OK/, 'hostnet-agent status inside the host namespace');
  t.match((await lab('status')).stdout, /h3\s+ok/, 'lab status lists every host\'s health');

  t.equal((await lab('deploy')).code, 2, 'deploy without a host name: usage');
  const deployed = await lab('deploy', 'h5');
  t.equal(deployed.code, 0, `deploy exits 0 ${deployed.stderr}`);
  t.match(deployed.stdout, /^h5 deployed on port swp4 of both ToRs: 10\.1\.0\.3\/32, 2001:db8:a::3\/128, reachable from the client$/m, 'deploy puts a server on the first free port');
  t.match((await run([join(bin, 'lab-probe'), 'client', 'h5', '443'])).stdout, /"connected"/, 'lab-probe knows h5, and the client reaches it');
  const released = await lab('release', 'h5');
  t.equal(released.code, 0, `release exits 0 ${released.stderr}`);
  t.match(released.stdout, /^h5 released/m);
  t.notMatch((await run([join(bin, 'hostnetctl'), 'get', 'hosts', '--server', topo.controller.grpc, '--ca', topo.controller.ca, '--token', topo.controller.adminToken])).stdout, /^h5 /m, 'h5 is gone from the controller');
  t.match((await lab('release', 'h9')).stderr, /host\/h9 not found/, 'releasing an unknown host says so');

  const down = await lab('down');
  t.match(down.stdout, /The lab is down/);
  t.notMatch((await run(['ip', 'netns', 'list'])).stdout, /hnmmain-/, 'no namespace left');
  t.equal((await run(['pgrep', '-f', dir], { allowFail: true })).stdout, '', 'no process left');
  t.equal(await stat(dir).then(() => 'exists', () => 'gone'), 'gone', 'the lab directory is gone');
  t.match((await lab('down')).stdout, /No lab was running/, 'down again is harmless');
});

void t.test('npm run lab -- --store etcd: two replicas on a 3-member etcd, and down removes etcd too', async (t) => {
  const dir = join(tmpdir(), `hostnet-lab-etcd-${process.pid}`);
  const env = {
    ...process.env, HOSTNET_LAB_DIR: dir, HOSTNET_LAB_KIND: 'n',
    HOSTNET_LAB_GRPC_PORT: String(await freePort()), HOSTNET_LAB_HTTP_PORT: String(await freePort()),
    HOSTNET_LAB_GRPC_PORT2: String(await freePort()), HOSTNET_LAB_HTTP_PORT2: String(await freePort()),
  };
  const lab = (...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [...MAIN, ...args], { env, timeout: 300_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
  t.teardown(async () => { await lab('down'); });
  const bad = await lab('up', '--store', 'mysql');
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--store takes sqlite or etcd, not "mysql"/, 'a bad store is named');

  const up = await lab('--store', 'etcd');
  t.equal(up.code, 0, `up exits 0 ${up.stderr}`);
  const topo = JSON.parse(await readFile(join(dir, 'topology.json'), 'utf8')) as Topology;
  t.match(up.stdout, /2 controller replicas on a 3-member etcd/);
  t.equal(topo.controller.store, 'etcd');
  t.equal(topo.controller.replicas.length, 2, 'two replicas');
  t.equal(topo.controller.etcd.length, 3, 'three etcd members');
  for (const r of topo.controller.replicas) t.match(up.stdout, new RegExp(`Dashboard API\\s+${r.http}/api/v1/hosts \\(${r.name}\\)`), `prints ${r.name}'s API`);
  const servers = topo.controller.replicas.map((r) => r.grpc).join(',');
  t.match(up.stdout, new RegExp(`HOSTNET_SERVER=${servers} `), 'the printed HOSTNET_SERVER lists both');
  const ctl = await run([join(dir, 'bin', 'hostnetctl'), 'get', 'hosts', '--server', servers, '--ca', topo.controller.ca, '--token', topo.controller.adminToken]);
  t.match(ctl.stdout, /^h3\s+b-db/m, 'hostnetctl with both servers');
  const down = await lab('down');
  t.match(down.stdout, /The lab is down/);
  t.equal((await run(['pgrep', '-f', dir], { allowFail: true })).stdout, '', 'no process left (etcd members included)');
  t.notMatch((await run(['ip', 'netns', 'list'])).stdout, /hnnmain-/, 'no namespace left');
});
