// hostnetctl against a running hostnet-controller (real processes, real
// SQLite file, gRPC on loopback): apply, get (table and JSON), delete, the
// errors a user sees, an oversized request, a graceful SIGTERM.
import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OPERATOR_TOKEN as OPERATOR, TENANT_A_TOKEN as TENANT_A, startController } from '../../fixtures/controller-process.js';
import { freePort } from '../../lab/index.js';
import { program } from '../../../lab/world.js';

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
  const c = await startController(t);
  const { dir, httpPort } = c;

  await writeFile(join(dir, 'world.yaml'), WORLD);
  const applied = await c.ctl(OPERATOR, 'apply', '-f', join(dir, 'world.yaml'));
  t.equal(applied.code, 0, applied.stderr);
  t.equal(applied.stdout, 'tenant/tenant-a created\nnetworkcatalog/standard created\nsubnet/a-web created\nobject/a-clients created\nhost/host-a1 created\nacl/a-web created\n');
  const again = await c.ctl(OPERATOR, 'apply', '-f', join(dir, 'world.yaml'));
  t.equal(again.stdout, 'tenant/tenant-a unchanged\nnetworkcatalog/standard unchanged\nsubnet/a-web unchanged\nobject/a-clients unchanged\nhost/host-a1 unchanged\nacl/a-web unchanged\n',
    'applying again changes nothing (a host without addresses in the file keeps the ones it has)');

  const hosts = await c.ctl(OPERATOR, 'get', 'hosts');
  t.match(hosts.stdout, /^ID\s+SUBNET\s+CATALOG\s+ASN\s+SWITCH-PORTS\s+ADDRESSES\nhost-a1\s+a-web\s+standard\s+65101\s+-\s+10\.1\.0\.1\/32\n$/, 'a table with the allocated address (not cabled to a known switch: -)');
  const json = await c.ctl(TENANT_A, 'get', 'object', 'a-clients', '-o', 'json');
  t.same(JSON.parse(json.stdout), { kind: 'Object', id: 'a-clients', tenantId: 'tenant-a', prefixes: ['10.9.0.0/24'], revision: '1' },
    'JSON in the same form apply takes, with the revision it was read at');

  await writeFile(join(dir, 'bad.yaml'), 'kind: Object\nid: a-bad\ntenantId: tenant-a\nprefixes: [10.9.0.1/24]\n');
  const bad = await c.ctl(TENANT_A, 'apply', '-f', join(dir, 'bad.yaml'));
  t.equal(bad.code, 1);
  t.match(bad.stderr, /INVALID_ARGUMENT: \S+bad\.yaml document 1: network_object\.prefixes\[0\]: "10\.9\.0\.1\/24" is not canonical/);
  await writeFile(join(dir, 'typo.yaml'), 'kind: Objekt\nid: x\n');
  const typo = await c.ctl(TENANT_A, 'apply', '-f', join(dir, 'typo.yaml'));
  t.equal(typo.code, 2);
  t.match(typo.stderr, /typo\.yaml document 1: kind must be one of Tenant, Subnet, NetworkCatalog, Host, Object, Acl/);

  const refused = await c.ctl(OPERATOR, 'delete', 'object', 'a-clients');
  t.equal(refused.code, 1);
  t.match(refused.stderr, /FAILED_PRECONDITION: object\/a-clients is still referenced by acl\/a-web rule web/);
  t.equal((await c.ctl(OPERATOR, 'delete', 'acl', 'a-web')).stdout, 'acl/a-web deleted\n');
  t.equal((await c.ctl(OPERATOR, 'delete', 'object', 'a-clients')).stdout, 'object/a-clients deleted\n');
  const gone = await c.ctl(OPERATOR, 'get', 'object', 'a-clients');
  t.match(gone.stderr, /NOT_FOUND: object\/a-clients not found/);
  t.match((await c.ctl('not-a-token-0123456789', 'get', 'hosts')).stderr, /UNAUTHENTICATED: unknown token/);

  await writeFile(join(dir, 'big.yaml'), `kind: Object\nid: a-big\ntenantId: tenant-a\nprefixes: [10.30.0.0/16]\ndescription: "${'x'.repeat(70_000)}"\n`);
  const big = await c.ctl(TENANT_A, 'apply', '-f', join(dir, 'big.yaml'));
  t.match(big.stderr, /RESOURCE_EXHAUSTED: the request is \d+ bytes; the server accepts at most 65536/, 'an oversized request is refused, with the limit');
  await writeFile(join(dir, 'huge.yaml'), `kind: Object\nid: a-big\ntenantId: tenant-a\nprefixes: [10.30.0.0/16]\ndescription: "${'x'.repeat(200_000)}"\n`);
  const huge = await c.ctl(TENANT_A, 'apply', '-f', join(dir, 'huge.yaml'));
  t.match(huge.stderr, /RESOURCE_EXHAUSTED: the request is \d+ bytes, far more than the server accepts: split it/, 'one refused before any handler reads it is explained too');

  const rollout = await c.ctl(OPERATOR, 'rollout');
  t.match(rollout.stdout, /^HOST\s+CONNECTED\s+DESIRED\s+SENT\s+APPLIED\s+NACK\nhost-a1\s+no\s+[0-9a-f]{16}\.[0-9a-f]{16}\s+-\s+-\s+-\n$/,
    'rollout: the host has a desired version and has not connected');

  const dashboard = await (await fetch(`http://127.0.0.1:${httpPort}/api/v1/hosts`, { headers: { authorization: `Bearer ${OPERATOR}` } })).json() as { id: string; status: string }[];
  t.match(dashboard, [{ id: 'host-a1', status: 'unknown' }], 'the dashboard API of the running controller lists the host');

  c.child.kill('SIGTERM');
  t.equal(await c.exited, 0, 'SIGTERM: a clean exit');
});

void t.test('hostnetctl: bad files get one line naming where, an apply is all or nothing, revisions protect edits', async (t) => {
  const c = await startController(t);
  const file = async (name: string, text: string): Promise<string> => {
    const path = join(c.dir, name);
    await writeFile(path, text);
    return path;
  };
  t.equal((await c.ctl(OPERATOR, 'apply', '-f', await file('world.yaml', WORLD))).code, 0);

  const oneLine = (what: string, r: { code: number; stderr: string }, pattern: RegExp): void => {
    t.equal(r.code, 2, `${what}: exit 2`);
    t.match(r.stderr, pattern, `${what}: ${r.stderr.trim()}`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line (no usage text, no stack trace)`);
  };
  oneLine('YAML syntax', await c.ctl(OPERATOR, 'apply', '-f', await file('syntax.yaml', 'kind: Object\nid: [unclosed\n')), /syntax\.yaml document 1: /);
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');
  oneLine('an alias bomb', await c.ctl(OPERATOR, 'apply', '-f', await file('bomb.yaml', `kind: Object\n${bomb}\n`)), /bomb\.yaml document 1: .*alias/i);
  oneLine('an unknown nested key', await c.ctl(OPERATOR, 'apply', '-f', await file('key.yaml', 'kind: Acl\nsubnetId: a-web\nrules:\n  - id: r\n    sourc: { any: true }\n')),
    /key\.yaml document 1: rules\[0\]\.sourc: unknown key \(one of id, action, source/);
  oneLine('an enum name without its prefix', await c.ctl(OPERATOR, 'apply', '-f', await file('enum.yaml', 'kind: NetworkCatalog\nname: x\nbgpListen: PORT_179\n')),
    /enum\.yaml document 1: bgpListen: "PORT_179" is not one of BGP_LISTEN_PORT_179, BGP_LISTEN_PORT_20179, BGP_LISTEN_NONE/);
  oneLine('an unreadable file', await c.ctl(OPERATOR, 'apply', '-f', join(c.dir, 'missing.yaml')), /cannot read .*missing\.yaml: ENOENT/);

  const ref = await c.ctl(TENANT_A, 'apply', '-f', await file('ref.yaml', 'kind: Acl\nsubnetId: a-web\nrules:\n  - { id: r, action: ACTION_ALLOW, protocol: PROTOCOL_ANY, source: { objectId: nope }, destination: { subnet: true } }\n'));
  t.equal(ref.code, 1);
  t.match(ref.stderr, /^hostnetctl: NOT_FOUND: \S+ref\.yaml document 1: acl\.rules\[0\]\.source\.object_id: object\/nope not found\n$/, 'a reference error names the document and the field');

  const two = await file('two.yaml', 'kind: Object\nid: a-new\ntenantId: tenant-a\nprefixes: [10.20.0.0/16]\n---\nkind: Object\nid: a-other\ntenantId: tenant-a\nprefixes: [10.21.0.1/16]\n');
  const partial = await c.ctl(TENANT_A, 'apply', '-f', two);
  t.match(partial.stderr, /INVALID_ARGUMENT: \S+two\.yaml document 2: network_object\.prefixes\[0\]/, 'the second document is refused');
  t.match((await c.ctl(TENANT_A, 'get', 'object', 'a-new')).stderr, /NOT_FOUND/, 'and the first was not stored either');

  // Read, let someone else change it, then apply what was read: refused, and --force overwrites.
  const read = await c.ctl(TENANT_A, 'get', 'object', 'a-clients', '-o', 'json');
  const mine = JSON.parse(read.stdout) as Record<string, unknown>;
  t.equal(mine.revision, '1');
  t.equal((await c.ctl(OPERATOR, 'apply', '-f', await file('theirs.yaml', 'kind: Object\nid: a-clients\ntenantId: tenant-a\nprefixes: [10.9.0.0/24, 10.10.0.0/24]\n'))).code, 0);
  const edited = await file('mine.yaml', JSON.stringify({ ...mine, prefixes: ['10.9.0.0/24', '10.11.0.0/24'] }));
  const stale = await c.ctl(TENANT_A, 'apply', '-f', edited);
  t.equal(stale.code, 1);
  t.match(stale.stderr, /ABORTED: \S+mine\.yaml document 1: network_object\.revision: object\/a-clients changed after revision 1 \(it is at revision \d+ now\)/, 'a stale edit is refused');
  const forced = await c.ctl(TENANT_A, 'apply', '-f', edited, '--force');
  t.equal(forced.stdout, 'object/a-clients updated\n', '--force overwrites');

  // The rollout: one JSON shape over gRPC and HTTP, and a deleted host leaves both.
  const viaCtl = JSON.parse((await c.ctl(OPERATOR, 'rollout', '-o', 'json')).stdout) as unknown;
  const viaHttp = JSON.parse((await c.get('/api/v1/rollout')).body) as unknown;
  t.same(viaCtl, viaHttp, 'hostnetctl rollout -o json is /api/v1/rollout');
  t.match(viaHttp, [{ hostId: 'host-a1', nackedVersion: null, nackError: null, connected: false }]);
  t.equal((await c.ctl(OPERATOR, 'delete', 'host', 'host-a1')).code, 0);
  await new Promise((r) => setTimeout(r, 300));
  t.same(JSON.parse((await c.get('/api/v1/rollout')).body), [], 'the deleted host is gone from /api/v1/rollout');
  t.same(JSON.parse((await c.ctl(OPERATOR, 'rollout', '-o', 'json')).stdout), [], 'and from hostnetctl rollout');
});

void t.test('hostnetctl: several --server addresses, the first that answers serves', async (t) => {
  const c = await startController(t);
  const dead = `127.0.0.1:${await freePort()}`;
  t.equal((await c.ctl(OPERATOR, 'apply', '-f', join(c.dir, 'w.yaml'))).code, 2, 'a missing file: the input error, no server tried');
  const viaSecond = await c.ctl(OPERATOR, 'get', 'tenants', '--server', dead);
  t.equal(viaSecond.code, 0, `a replica that cannot be reached hands over to the next: ${viaSecond.stderr.trim()}`);
  const onlyDead = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [...program('hostnetctl').slice(1), 'get', 'tenants', '--server', `${dead},${dead}`, '--token', OPERATOR], (err, _stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr });
    });
  });
  t.equal(onlyDead.code, 1);
  t.match(onlyDead.stderr, new RegExp(`^hostnetctl: cannot reach the controller: ${dead}: .*; ${dead}: `), 'none answers: each one\'s error, on one line');
  const bad = await c.ctl(OPERATOR, 'get', 'tenants', '--server', 'nope');
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--server "nope" is not host:port/);
});

void t.test('hostnetctl and the HTTP API: switches, where a host is cabled, a switch\'s compiled configuration', async (t) => {
  const c = await startController(t);
  const tors = [1, 2].map((i) => `kind: Switch\nname: tor${i}\nasn: 6500${i}\nrouterId: 10.255.0.${i}\nports: [swp1, swp2]\nfabricPorts: [swp48]\npoolVlan: 100\n`).join('---\n');
  const host = 'kind: Host\nid: host-a1\nsubnetId: a-web\ncatalog: standard\nasn: 65101\nswitchPorts:\n  - { uplink: eth0, switchName: tor1, port: swp1 }\n  - { uplink: eth1, switchName: tor2, port: swp1 }\n';
  await writeFile(join(c.dir, 'world.yaml'), `${tors}---\n${WORLD.replace(/kind: Host\n(.*\n){4}/, host)}`);
  const applied = await c.ctl(OPERATOR, 'apply', '-f', join(c.dir, 'world.yaml'));
  t.equal(applied.code, 0, applied.stderr);
  t.match(applied.stdout, /^switch\/tor1 created\nswitch\/tor2 created\n/, 'switches are applied like any resource');
  t.match((await c.ctl(OPERATOR, 'get', 'hosts')).stdout, /\nhost-a1\s+a-web\s+standard\s+65101\s+tor1\/swp1,tor2\/swp1\s+10\.1\.0\.1\/32\n$/, 'the hosts table says where each is cabled');
  t.match((await c.ctl(OPERATOR, 'get', 'switches')).stdout, /^NAME\s+ASN\s+ROUTER-ID\s+PORTS\s+POOL-VLAN\ntor1\s+65001\s+10\.255\.0\.1\s+2\s+100\ntor2/);
  const conf = await c.ctl(OPERATOR, 'tor', 'config', 'tor1');
  t.equal(conf.code, 0, conf.stderr);
  t.match(conf.stdout, /^frr defaults datacenter\nhostname tor1\n/);
  t.match(conf.stdout, /\n neighbor swp1 interface remote-as 65101\n/, 'the host\'s port peers with the host\'s ASN');
  t.match(conf.stdout, /\nip prefix-list HOSTNET-swp1 seq 5 permit 10\.1\.0\.1\/32\n!\n/, 'and accepts its /32 only');
  t.match(conf.stdout, /\ninterface swp2\n description hostnet pool vlan 100\nexit\n/, 'the free port is in the pool');
  const http = await c.get('/api/v1/switches/tor1/frr.conf');
  t.equal(http.status, 200);
  t.equal(http.body, conf.stdout, 'the HTTP API serves the same text');
  const list = await c.get('/api/v1/switches');
  const version = (JSON.parse(list.body) as { name: string; version: string; routedPorts: number }[]).find((s) => s.name === 'tor1');
  t.equal(http.headers.get('etag'), `"${version?.version ?? ''}"`, 'its ETag is the version /api/v1/switches lists');
  t.equal(version?.routedPorts, 1);
  t.equal((await c.get('/api/v1/switches/tor1/frr.conf', TENANT_A)).status, 403, 'tenants do not read switches');
  t.equal((await c.get('/api/v1/switches/tor9/frr.conf')).status, 404);
  const unknown = await c.ctl(OPERATOR, 'tor', 'config', 'tor9');
  t.match(unknown.stderr, /NOT_FOUND: switch\/tor9 not found/);
  t.equal((await c.ctl(OPERATOR, 'delete', 'host', 'host-a1')).code, 0);
  const released = await c.get('/api/v1/switches/tor1/frr.conf');
  t.match(released.body, /\ninterface swp1\n description hostnet pool vlan 100\nexit\n/, 'a deleted host\'s port is back in the pool');
  t.notMatch(released.body, /HOSTNET-swp1|neighbor swp1 /, 'no session or filter left for it');
  t.not(released.headers.get('etag'), http.headers.get('etag'), 'a new version');
});
