// The controller's Debian package: built from the compiled tree, with the
// control fields, files and conffile a package manager expects; its unit
// passes systemd-analyze verify; the shipped example config compiles; and
// the packaged controller (unpacked, with a test config) serves.
import t from 'tap';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, run, waitFor } from '../../lab/index.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

void t.test('hostnet-controller .deb', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'hostnet-deb-'));
  t.teardown(() => run(['rm', '-rf', out]));
  const built = await run(['bash', join(REPO, 'packaging/build-controller-deb'), '--out', out], { timeoutMs: 300_000 });
  const deb = built.stdout.trim().split('\n').pop() ?? '';
  t.match(deb, /hostnet-controller_\d+\.\d+\.\d+[^_]*_[a-z0-9]+\.deb$/, 'a versioned package');
  const field = async (name: string) => (await run(['dpkg-deb', '-f', deb, name])).stdout.trim();
  t.equal(await field('Package'), 'hostnet-controller');
  t.equal(await field('Depends'), 'nodejs (>= 20)');
  const contents = (await run(['dpkg-deb', '--contents', deb])).stdout;
  for (const path of ['./lib/systemd/system/hostnet-controller.service', './etc/hostnet-controller/controller.yaml', './usr/bin/hostnet-controller',
    './usr/bin/hostnetctl', './opt/hostnet-controller/dist/controller/src/main.js', './opt/hostnet-controller/node_modules/better-sqlite3/build/Release/better_sqlite3.node']) {
    t.ok(contents.includes(path), `contains ${path}`);
  }
  t.notOk(contents.includes('node_modules/netlink/'), 'not the agent\'s addons');
  const root = join(out, 'root');
  await run(['dpkg-deb', '-x', deb, root]);
  await run(['dpkg-deb', '-e', deb, join(root, 'DEBIAN')]);
  t.equal((await readFile(join(root, 'DEBIAN/conffiles'), 'utf8')).trim(), '/etc/hostnet-controller/controller.yaml', 'the config is a conffile');
  const verify = await run(['systemd-analyze', 'verify', join(root, 'lib/systemd/system/hostnet-controller.service')], { allowFail: true });
  t.equal(`${verify.stdout}${verify.stderr}`.trim(), '', 'systemd-analyze verify finds nothing wrong with the unit');

  const main = join(root, 'opt/hostnet-controller/dist/controller/src/main.js');
  const check = await run([process.execPath, main, 'check-config', '--config', join(root, 'etc/hostnet-controller/controller.yaml')]);
  t.match(JSON.parse(check.stdout), { store: { path: '/var/lib/hostnet-controller/hostnet.db' }, grpc: { listen: '0.0.0.0:7443' } }, 'the example config compiles');
  const replica = await run([process.execPath, main, 'check-config', '--config', join(root, 'etc/hostnet-controller/controller-replica.yaml.example')]);
  t.match(JSON.parse(replica.stdout), { replica: 'ctl-1', store: { engine: 'etcd', etcd: { endpoints: ['10.0.0.1:2379', '10.0.0.2:2379', '10.0.0.3:2379'], caFile: '/etc/hostnet-controller/etcd/ca.pem' } } },
    'the example for a replica on etcd compiles');

  // The packaged controller from the packaged controller.yaml, only its paths and ports made the test's,
  // with a CA and server certificate from the packaged `hostnet-controller ca init`.
  const [grpcPort, agentPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const ca = join(out, 'ca');
  const init = await run([process.execPath, main, 'ca', 'init', '--dir', ca, '--server-name', '127.0.0.1']);
  t.match(init.stdout, /CA SHA-256 fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}/, 'hostnet-controller ca init makes a CA and prints its fingerprint');
  t.match((await run([process.execPath, main, 'ca', 'init', '--dir', ca], { allowFail: true })).stderr, /exists: a CA is never overwritten/, 'and never overwrites one');
  await writeFile(join(out, 'tokens.yaml'), 'tokens:\n  - { name: ops, token: deb-test-operator-token, role: operator }\n');
  const packaged = await readFile(join(root, 'etc/hostnet-controller/controller.yaml'), 'utf8');
  const paths: [string, string][] = [
    ['/var/lib/hostnet-controller/hostnet.db', join(out, 'db.sqlite')], ['0.0.0.0:7443', `127.0.0.1:${grpcPort}`], ['0.0.0.0:7444', `127.0.0.1:${agentPort}`],
    ['127.0.0.1:8080', `127.0.0.1:${httpPort}`], ['/etc/hostnet-controller/tls/controller.pem', join(ca, 'server.pem')],
    ['/etc/hostnet-controller/tls/controller.key', join(ca, 'server.key')], ['/etc/hostnet-controller/ca/', `${ca}/`],
    ['/etc/hostnet-controller/tokens.yaml', join(out, 'tokens.yaml')],
  ];
  await writeFile(join(out, 'c.yaml'), paths.reduce((text, [from, to]) => text.replaceAll(from, to), packaged));
  const { spawn } = await import('node:child_process');
  const proc = spawn(process.execPath, [main, 'run', '--config', join(out, 'c.yaml')], { stdio: 'ignore' });
  t.teardown(() => { proc.kill('SIGKILL'); });
  await waitFor('the packaged controller', async () => ((await fetch(`http://127.0.0.1:${httpPort}/healthz`).catch(() => undefined))?.ok ? true : undefined),
    { timeoutMs: 20_000, intervalMs: 100 });
  const ctl = (...args: string[]) => run([process.execPath, join(root, 'opt/hostnet-controller/dist/controller/src/hostnetctl.js'), ...args,
    '--server', `127.0.0.1:${grpcPort}`, '--ca', join(ca, 'ca.pem'), '--token', 'deb-test-operator-token'], { allowFail: true });
  const applied = await ctl('apply', '-f', join(REPO, 'lab/demo-world.yaml'));
  t.equal(applied.code, 0, `the packaged hostnetctl applies over TLS ${applied.stderr}`);
  t.match((await ctl('get', 'hosts')).stdout, /^ID\s+[\s\S]*\nh1\s/, 'gets');
  t.match((await ctl('rollout')).stdout, /^HOST\s+CONNECTED[\s\S]*\nh1\s+no\s/, 'and shows the rollout');
  t.match((await ctl('enroll', 'h1')).stdout, /^token: hne1_/, 'and makes enrollment tokens');
  const plain = await run([process.execPath, join(root, 'opt/hostnet-controller/dist/controller/src/hostnetctl.js'), 'get', 'hosts',
    '--server', `127.0.0.1:${grpcPort}`, '--token', 'deb-test-operator-token'], { allowFail: true });
  t.equal(plain.code, 1, 'without --ca (plaintext to a TLS listener) it cannot connect');
  t.equal((await fetch(`http://127.0.0.1:${httpPort}/api/v1/hosts`)).status, 401, 'the dashboard API wants the token too');
  const page = await fetch(`http://127.0.0.1:${httpPort}/`);
  t.equal(page.status, 200, 'the package serves the dashboard page');
  t.match(await page.text(), /<script type="module" src="\/app.js">/);
  t.match(await (await fetch(`http://127.0.0.1:${httpPort}/app.js`)).text(), /sessionStorage/, 'and its script, from the package');
});
