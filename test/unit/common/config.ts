import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, compileYaml, loadConfigFile } from '../../../common/config.js';
import { loadAgentConfig, parseAgentConfig } from '../../../agent/src/config.js';
import { parseControllerConfig } from '../../../controller/src/config.js';
import { tempDir } from '../../fixtures/temp.js';

const AGENT = `
hostId: host-a1
controller:
  addresses: ["ctl1.pod1:7443", "[fd00::1]:7443"]
managementPrefixes: ["192.0.2.0/24", "2001:db8:ffff::/48"]
heartbeat: 10s
log: { level: debug }
`;

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.field;
    throw err;
  }
  throw new Error('no error thrown');
}

void t.test('agent config compiles into a frozen, normalised value', async (t) => {
  const c = parseAgentConfig(AGENT);
  t.equal(c.hostId, 'host-a1');
  t.same(c.controller.addresses, ['ctl1.pod1:7443', '[fd00::1]:7443']);
  t.equal(c.heartbeatMs, 10_000, 'durations become milliseconds');
  t.equal(c.loopbackKind, 'dummy', 'production default loopback kind');
  t.equal(c.logLevel, 'debug');
  t.same(c.frr, { confDir: '/etc/frr', runDir: '/var/run/frr', vtySocket: '/var/run/frr', daemons: '/etc/frr/daemons', commandLog: '/var/log/frr/hostnet-commands.log' }, 'FRR in its Debian places');
  t.equal(c.checkIntervalMs, 5000);
  t.equal(c.metricsListen, '127.0.0.1:9464', 'metrics and status on localhost');
  t.equal(fieldOf(() => parseAgentConfig(AGENT.replace('"ctl1.pod1:7443", ', '"unix:/run/hostnet/controller.sock", '))), 'controller.addresses[0]',
    'no unix socket: an agent proves its host with its certificate');
  t.same([c.controller.caFile, c.controller.certFile, c.controller.keyFile, c.controller.enrollmentTokenFile],
    ['/etc/hostnet/tls/ca.pem', '/var/lib/hostnet/tls/agent.pem', '/var/lib/hostnet/tls/agent.key', '/etc/hostnet/tls/enrollment-token'],
    'TLS files: the CA and token from install-agent, key and certificate kept with the state');
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.controller) && Object.isFrozen(c.controller.addresses), 'deeply frozen');
});

void t.test('every bad field is named', async (t) => {
  const cases: [string, string][] = [
    [`${AGENT}\nbogus: 1\n`, 'bogus'],
    [AGENT.replace('log: { level: debug }', 'log: { level: debug, colour: true }'), 'log.colour'],
    [AGENT.replace('level: debug', 'level: loud'), 'log.level'],
    [AGENT.replace('10s', 'ten seconds'), 'heartbeat'],
    [AGENT.replace('"192.0.2.0/24"', '"192.0.2.0/33"'), 'managementPrefixes[0]'],
    [AGENT.replace('"[fd00::1]:7443"', '"no-port"'), 'controller.addresses[1]'],
    [AGENT.replace('hostId: host-a1', 'hostId: Host_A'), 'hostId'],
    [AGENT.replace('hostId: host-a1', ''), 'hostId'],
    [AGENT.replace('addresses: ["ctl1.pod1:7443", "[fd00::1]:7443"]', 'addresses: []'), 'controller.addresses'],
    [AGENT.replace('controller:', 'controller:\n  tls: { caFile: 7 }'), 'controller.tls.caFile'],
    [`${AGENT}\nfrr: { confdir: /etc/frr }\n`, 'frr.confdir'],
    [`${AGENT}\ncheckInterval: often\n`, 'checkInterval'],
    [AGENT.replace('"ctl1.pod1:7443"', '"unix:relative.sock"'), 'controller.addresses[0]'],
  ];
  for (const [text, field] of cases) t.equal(fieldOf(() => parseAgentConfig(text)), field, field);
});

void t.test('management prefixes are stored canonical', async (t) => {
  const c = parseAgentConfig(AGENT.replace('"192.0.2.0/24"', '"192.0.2.77/24"'));
  t.same(c.managementPrefixes, ['192.0.2.0/24', '2001:db8:ffff::/48']);
});

void t.test('YAML syntax errors and duplicate keys name the source and line', async (t) => {
  t.throws(() => compileYaml('a: [1, 2\nb: 3\n', 'x.yaml', (f) => f.string('a')), /x\.yaml:\d+:/);
  t.throws(() => compileYaml('a: 1\na: 2\n', 'dup.yaml', (f) => f.int('a', { min: 0, max: 9 })), /dup\.yaml/);
  t.throws(() => compileYaml('- 1\n- 2\n', 'list.yaml', (f) => f.has('a')), /must be a mapping/);
});

void t.test('controller config defaults and cross-field checks', async (t) => {
  const c = parseControllerConfig('');
  t.equal(c.store.engine, 'sqlite');
  t.equal(c.grpc.maxMessageBytes, 4 << 20);
  t.equal(fieldOf(() => parseControllerConfig('store: { engine: etcd }')), 'store.etcd', 'etcd needs its endpoints');
  t.equal(fieldOf(() => parseControllerConfig('store: { etcd: { endpoints: ["127.0.0.1:2379"] } }')), 'store.etcd', 'a field for another engine is refused, not ignored');
  t.equal(fieldOf(() => parseControllerConfig('store: { engine: etcd, path: /x.db, etcd: { endpoints: ["127.0.0.1:2379"] } }')), 'store.path');
  t.equal(fieldOf(() => parseControllerConfig('store: { engine: etcd, etcd: { endpoints: [] } }')), 'store.etcd.endpoints');
  t.equal(fieldOf(() => parseControllerConfig('store: { engine: etcd, etcd: { endpoints: ["etcd1"] } }')), 'store.etcd.endpoints[0]');
  t.equal(fieldOf(() => parseControllerConfig('store: { engine: etcd, etcd: { endpoints: ["a:1"], leaseTtl: 500ms } }')), 'store.etcd.leaseTtl');
  t.equal(fieldOf(() => parseControllerConfig('store: { engine: etcd, etcd: { endpoints: ["a:1"], certFile: /c.pem } }')), 'store.etcd.keyFile');
  t.equal(fieldOf(() => parseControllerConfig('store: { engine: etcd, etcd: { endpoints: ["a:1"], edpoints: [] } }')), 'store.etcd.edpoints', 'a misspelt key is named');
  t.equal(fieldOf(() => parseControllerConfig('replica: Ctl_1')), 'replica');
  const e = parseControllerConfig('replica: ctl-2\nstore: { engine: etcd, etcd: { endpoints: ["10.0.0.1:2379", "10.0.0.2:2379"] } }');
  t.same([e.replica, e.store.etcd?.endpoints, e.store.etcd?.prefix, e.store.etcd?.leaseTtlSeconds, e.store.etcd?.compactEveryMs],
    ['ctl-2', ['10.0.0.1:2379', '10.0.0.2:2379'], '/hostnet/v1/', 5, 300_000], 'etcd defaults');
  t.equal(fieldOf(() => parseControllerConfig('agents: { heartbeat: 10ms }')), 'agents.heartbeat');
  t.equal(fieldOf(() => parseControllerConfig('grpc: { maxMessageBytes: 10 }')), 'grpc.maxMessageBytes');
  t.equal(fieldOf(() => parseControllerConfig('http: { listen: 8080 }')), 'http.listen');
  t.equal(fieldOf(() => parseControllerConfig('grpc: { localSocket: /run/hostnet/controller.sock }')), 'grpc.localSocket', 'the unix socket without identity is gone');
  t.equal(fieldOf(() => parseControllerConfig('grpc: { clientCaFile: /ca.pem }')), 'grpc.clientCaFile');
  t.equal(fieldOf(() => parseControllerConfig('grpc: { agentListen: "0.0.0.0:7444" }')), 'grpc.agentListen', 'agents need TLS');
  t.equal(fieldOf(() => parseControllerConfig('grpc: { agentListen: "0.0.0.0:7444", certFile: /s.pem, keyFile: /s.key }')), 'grpc.agentListen', 'and a CA');
  t.equal(fieldOf(() => parseControllerConfig('grpc: { certFile: /s.pem }')), 'grpc.keyFile');
  t.equal(fieldOf(() => parseControllerConfig('ca: { certFile: /c.pem, keyFile: /c.key, certificateLifetime: 91d }')), 'ca.certificateLifetime');
  t.equal(fieldOf(() => parseControllerConfig('ca: { certFile: /c.pem }')), 'ca.keyFile');
  const tls = parseControllerConfig('grpc: { agentListen: "0.0.0.0:7444", certFile: /s.pem, keyFile: /s.key }\nca: { certFile: /c.pem, keyFile: /c.key }');
  t.same([tls.grpc.agentListen, tls.ca?.certificateLifetimeMs, tls.ca?.enrollmentTokenLifetimeMs], ['0.0.0.0:7444', 7 * 86_400_000, 3_600_000], 'TLS defaults: a week, an hour');
});

void t.test('loading a file', async (t) => {
  const dir = await tempDir(t, 'hostnet-config');
  const path = join(dir, 'agent.yaml');
  await writeFile(path, AGENT);
  t.equal((await loadAgentConfig(path)).hostId, 'host-a1');
  await t.rejects(loadConfigFile(join(dir, 'missing.yaml'), (f) => f), /cannot read config file .*missing\.yaml: ENOENT/);
});
