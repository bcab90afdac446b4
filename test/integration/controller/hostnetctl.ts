// hostnetctl against a running hostnet-controller (real processes, real
// SQLite file, gRPC on loopback): apply, get (table and JSON), delete, the
// errors a user sees, an oversized request, a graceful SIGTERM.
import t from 'tap';
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../lab/index.js';

const CONTROLLER = fileURLToPath(new URL('../../../controller/src/main.ts', import.meta.url));
const CTL = fileURLToPath(new URL('../../../controller/src/hostnetctl.ts', import.meta.url));
const OPERATOR = 'operator-token-0123456789';
const TENANT_A = 'tenant-a-token-0123456789';


function ctl(port: number, token: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import=tsx', CTL, ...args, '--server', `127.0.0.1:${port}`, '--token', token], (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const WORLD = `kind: Tenant
id: tenant-a
name: Tenant A
---
kind: NetworkCatalog
name: standard
networks:
  - name: private
    loopback: vni0
    uplinks: [eth0, eth1]
    acceptedPrefixes: [10.0.0.0/8]
    routeTag: 100
bgpListen: BGP_LISTEN_PORT_179
multipath: MULTIPATH_ECMP
---
kind: Subnet
id: a-web
tenantId: tenant-a
prefixV4: 10.1.0.0/24
---
kind: Object
id: a-clients
tenantId: tenant-a
prefixes: [10.9.0.0/24]
---
kind: Host
id: host-a1
subnetId: a-web
catalog: standard
asn: 65101
---
kind: Acl
subnetId: a-web
rules:
  - id: web
    action: ACTION_ALLOW
    source: { objectId: a-clients }
    destination: { subnet: true }
    protocol: PROTOCOL_TCP
    ports: [{ first: 443 }]
`;

void t.test('hostnetctl round trip against a running controller', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostnet-ctl-'));
  const port = await freePort();
  const httpPort = await freePort();
  await writeFile(join(dir, 'tokens.yaml'), `tokens:\n  - { name: ops, token: ${OPERATOR}, role: operator }\n  - { name: a, token: ${TENANT_A}, role: tenant-admin, tenant: tenant-a }\n`);
  await writeFile(join(dir, 'controller.yaml'), `store: { path: ${join(dir, 'hostnet.db')} }\ngrpc: { listen: "127.0.0.1:${port}", maxMessageBytes: 65536 }\nhttp: { listen: "127.0.0.1:${httpPort}" }\ntokensFile: ${join(dir, 'tokens.yaml')}\nlog: { level: info }\n`);
  const controller = spawn(process.execPath, ['--import=tsx', CONTROLLER, '--config', join(dir, 'controller.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => controller.once('exit', (code) => r(code)));
  t.teardown(() => { controller.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: controller.stdout }).on('line', (l) => { if (l.includes('controller serving')) resolve(); });
    void exited.then((c) => reject(new Error(`controller exited ${c}`)));
  });

  await writeFile(join(dir, 'world.yaml'), WORLD);
  const applied = await ctl(port, OPERATOR, 'apply', '-f', join(dir, 'world.yaml'));
  t.equal(applied.code, 0, applied.stderr);
  t.equal(applied.stdout, 'tenant/tenant-a created\nnetworkcatalog/standard created\nsubnet/a-web created\nobject/a-clients created\nhost/host-a1 created\nacl/a-web created\n');
  const again = await ctl(port, OPERATOR, 'apply', '-f', join(dir, 'world.yaml'));
  t.equal(again.stdout, 'tenant/tenant-a unchanged\nnetworkcatalog/standard unchanged\nsubnet/a-web unchanged\nobject/a-clients unchanged\nhost/host-a1 unchanged\nacl/a-web unchanged\n',
    'applying again changes nothing (a host without addresses in the file keeps the ones it has)');

  const hosts = await ctl(port, OPERATOR, 'get', 'hosts');
  t.match(hosts.stdout, /^ID\s+SUBNET\s+CATALOG\s+ASN\s+ADDRESSES\nhost-a1\s+a-web\s+standard\s+65101\s+10\.1\.0\.1\/32\n$/, 'a table with the allocated address');
  const json = await ctl(port, TENANT_A, 'get', 'object', 'a-clients', '-o', 'json');
  t.same(JSON.parse(json.stdout), { kind: 'Object', id: 'a-clients', tenantId: 'tenant-a', prefixes: ['10.9.0.0/24'], revision: '1' },
    'JSON in the same form apply takes, with the revision it was read at');

  await writeFile(join(dir, 'bad.yaml'), 'kind: Object\nid: a-bad\ntenantId: tenant-a\nprefixes: [10.9.0.1/24]\n');
  const bad = await ctl(port, TENANT_A, 'apply', '-f', join(dir, 'bad.yaml'));
  t.equal(bad.code, 1);
  t.match(bad.stderr, /INVALID_ARGUMENT: \S+bad\.yaml document 1: network_object\.prefixes\[0\]: "10\.9\.0\.1\/24" is not canonical/);
  await writeFile(join(dir, 'typo.yaml'), 'kind: Objekt\nid: x\n');
  const typo = await ctl(port, TENANT_A, 'apply', '-f', join(dir, 'typo.yaml'));
  t.equal(typo.code, 2);
  t.match(typo.stderr, /typo\.yaml document 1: kind must be one of Tenant, Subnet, NetworkCatalog, Host, Object, Acl/);

  const refused = await ctl(port, OPERATOR, 'delete', 'object', 'a-clients');
  t.equal(refused.code, 1);
  t.match(refused.stderr, /FAILED_PRECONDITION: object\/a-clients is still referenced by acl\/a-web rule web/);
  t.equal((await ctl(port, OPERATOR, 'delete', 'acl', 'a-web')).stdout, 'acl/a-web deleted\n');
  t.equal((await ctl(port, OPERATOR, 'delete', 'object', 'a-clients')).stdout, 'object/a-clients deleted\n');
  const gone = await ctl(port, OPERATOR, 'get', 'object', 'a-clients');
  t.match(gone.stderr, /NOT_FOUND: object\/a-clients not found/);
  t.match((await ctl(port, 'not-a-token-0123456789', 'get', 'hosts')).stderr, /UNAUTHENTICATED: unknown token/);

  await writeFile(join(dir, 'big.yaml'), `kind: Object\nid: a-big\ntenantId: tenant-a\nprefixes: [10.30.0.0/16]\ndescription: "${'x'.repeat(70_000)}"\n`);
  const big = await ctl(port, TENANT_A, 'apply', '-f', join(dir, 'big.yaml'));
  t.match(big.stderr, /RESOURCE_EXHAUSTED: the request is \d+ bytes; the server accepts at most 65536/, 'an oversized request is refused, with the limit');

  const rollout = await ctl(port, OPERATOR, 'rollout');
  t.match(rollout.stdout, /^HOST\s+CONNECTED\s+DESIRED\s+SENT\s+APPLIED\s+NACK\nhost-a1\s+no\s+[0-9a-f]{16}\.[0-9a-f]{16}\s+-\s+-\s+-\n$/,
    'rollout: the host has a desired version and has not connected');

  const dashboard = await (await fetch(`http://127.0.0.1:${httpPort}/api/v1/hosts`)).json() as { id: string; status: string }[];
  t.match(dashboard, [{ id: 'host-a1', status: 'unknown' }], 'the dashboard API of the running controller lists the host');

  controller.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: a clean exit');
});
