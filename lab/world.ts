// The whole system on one machine, on a netns Lab: a controller on its
// embedded SQLite store with the demo data (demo-world.yaml), two ToR
// namespaces running FRR whose per-port filters accept only each host's own
// /32, three host namespaces each with its own FRR and a hostnet-agent
// process, and a client namespace behind both ToRs. `npm run lab` keeps one
// running; the e2e tests build their own.
//
// The controller runs in the root namespace: the admin gRPC API (server TLS,
// bearer tokens) and HTTP on 127.0.0.1 for operators, the agent listener
// (mutual TLS) on a management network the host namespaces join with a veth,
// as servers reach their controller. Its agents CA is made at start
// (hostnet-controller's `ca init`); every agent enrolls with a one-time token
// (hostnetctl enroll) and its own key, as on a real server.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Metadata, credentials } from '@grpc/grpc-js';
import { EtcdCluster, etcdStoreLine } from './etcd.js';
import { type ServiceClient, createClient } from '../proto/grpc/index.js';
import { AdminService } from '../proto/gen/hostnet/v1/admin_pb.js';
import { BgpListen, type Host, Multipath, type NetworkCatalog } from '../proto/gen/hostnet/v1/resources_pb.js';
import type { HostView } from '../controller/src/http.js';
import { initCa } from '../controller/src/identity/ca.js';
import {
  Frr, type Lab, type LabProcess, type ManagementNetwork, type Netns, fibRoute, freePort, run, torConfig, waitFor, waitForRoute,
} from '../test/lab/index.js';

const compiled = import.meta.url.endsWith('.js');
const ROOT = fileURLToPath(new URL(compiled ? '../../' : '../', import.meta.url));

/**
 * Whether our programs run compiled from dist/: when this module is (npm run lab), or when
 * HOSTNET_PROGRAMS=dist (`npm test` sets it, right after its build: what production runs, and
 * each process starts about twice as fast). Otherwise the sources through tsx (a test run alone
 * runs the code as it is in the tree).
 */
export const programsFromDist = compiled || process.env.HOSTNET_PROGRAMS === 'dist';

/** argv running one of our programs: compiled from dist/ (programsFromDist), or the sources through tsx. */
export function program(name: 'agent' | 'controller' | 'hostnetctl'): string[] {
  const rel = { agent: 'agent/src/main', controller: 'controller/src/main', hostnetctl: 'controller/src/hostnetctl' }[name];
  // The agent's shebang flag (a small young generation) is kept here too.
  const flags = name === 'agent' ? ['--max-semi-space-size=2'] : [];
  return programsFromDist ? [process.execPath, ...flags, join(ROOT, 'dist', `${rel}.js`)]
    : [process.execPath, ...flags, '--import=tsx', join(ROOT, `${rel}.ts`)];
}

export const DEMO_WORLD = join(ROOT, 'lab', 'demo-world.yaml');
/** The probe/listener helper (plain JS, runs inside namespaces). */
export const PROBE_HELPER = join(ROOT, 'test', 'lab', 'probe-helper.mjs');
export const CLIENT_ADDRESS = '10.200.0.1';
export const CLIENT_ADDRESS6 = '2001:db8:200::1';
export const MANAGEMENT_PREFIX = '192.0.2.0/24';
const CLIENT_PORT = 'swp9';
const TOR_ASNS = [65001, 65002] as const;
/** Ports the demo listeners serve on each host, by subnet. */
export const LISTEN_PORTS: Record<string, number[]> = { 'a-web': [443, 8080], 'b-db': [5432] };

export interface WorldOptions {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** The heartbeat the controller gives its agents (a host is stale after three); short in the lab. */
  readonly heartbeat?: string;
  readonly checkInterval?: string;
  readonly log?: (line: string) => void;
  /**
   * Hosts whose FRR and agent run elsewhere (the container image booted into
   * the host's namespace); the world builds their namespace and links only.
   */
  readonly external?: readonly string[];
  /** More YAML documents applied after demo-world.yaml (e.g. lab/examples/caas.yaml: a CaaS host). */
  readonly extraDocs?: readonly string[];
  /**
   * The store: SQLite with one controller (the default), or a 3-member etcd
   * cluster on loopback with a controller replica per entry of
   * `replicaPorts` besides the first (grpcPort, httpPort).
   */
  readonly store?: 'sqlite' | 'etcd';
  readonly replicaPorts?: readonly { readonly grpc: number; readonly http: number }[];
  /** How long the agents' certificates live (the controller's ca.certificateLifetime; default 1h). */
  readonly certificateLifetime?: string;
}

/** One controller process of the lab, with its ports and directory. */
export interface Replica {
  readonly name: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Its agent listener's port, on the management network's gateway address. */
  agentPort: number;
  readonly dir: string;
  process: LabProcess | undefined;
}

export interface LabHost {
  readonly id: string;
  readonly tenant: string;
  readonly subnet: string;
  readonly asn: number;
  readonly addresses: readonly string[];
  /** The host's /32 without the length. */
  readonly address: string;
  /** The host's /128 without the length. */
  readonly address6: string;
  readonly ns: Netns;
  /** The host's FRR (set once started; undefined for an external host). */
  frr: Frr | undefined;
  /** The ToR port (swpN on both ToRs). */
  readonly torPort: string;
  /** The port its bgpd listens on (the catalog's): the ToRs connect to it. */
  readonly bgpPort: number;
  /** Its catalog uses one ToR at a time (the client sees one path to it, not two). */
  readonly activeStandby: boolean;
  readonly configPath: string;
  readonly stateDir: string;
  agent: LabProcess | undefined;
}

export interface Topology {
  readonly controller: {
    readonly grpc: string;
    readonly http: string;
    /** The agent listeners (mutual TLS), on the management network. */
    readonly agentAddresses: readonly string[];
    /** The CA of the controller's certificates (hostnetctl --ca; agents' controller.tls.caFile). */
    readonly ca: string;
    readonly adminToken: string;
    readonly tenantTokens: Record<string, string>;
    readonly log: string;
    readonly store: 'sqlite' | 'etcd';
    /** Every replica (one with SQLite). */
    readonly replicas: { readonly name: string; readonly grpc: string; readonly http: string; readonly log: string }[];
    /** The etcd members' client endpoints (etcd only). */
    readonly etcd: readonly string[];
  };
  readonly tors: { readonly name: string; readonly namespace: string; readonly asn: number; readonly vtySocket: string }[];
  readonly client: { readonly namespace: string; readonly address: string };
  readonly hosts: {
    readonly id: string; readonly tenant: string; readonly subnet: string; readonly namespace: string;
    readonly addresses: readonly string[]; readonly asn: number; readonly uplinks: Record<string, string>;
    readonly agentConfig: string; readonly vtySocket: string;
  }[];
  readonly dir: string;
}

export class World {
  readonly replicas: Replica[];
  /** The etcd cluster (store etcd). */
  etcd: EtcdCluster | undefined;
  readonly hosts = new Map<string, LabHost>();
  readonly tors: Netns[] = [];
  readonly torFrr: Frr[] = [];
  /** The ToRs' agents (hostnet-agent tor), by switch name. */
  readonly torAgents = new Map<string, LabProcess>();
  client!: Netns;
  /** The management network the agents reach the controller on. */
  mgmt!: ManagementNetwork;
  private readonly listeners: LabProcess[] = [];
  readonly adminToken = `lab-admin-${randomBytes(12).toString('hex')}`;
  readonly tenantTokens: Record<string, string> = {
    'tenant-a': `lab-tenant-a-${randomBytes(12).toString('hex')}`,
    'tenant-b': `lab-tenant-b-${randomBytes(12).toString('hex')}`,
  };
  private adminClient: ServiceClient<typeof AdminService.method> | undefined;

  private constructor(readonly lab: Lab, readonly o: WorldOptions) {
    const ports = [{ grpc: o.grpcPort, http: o.httpPort }, ...(o.store === 'etcd' ? o.replicaPorts ?? [] : [])];
    if (o.store === 'etcd' && ports.length < 2) throw new Error('store etcd: give the ports of a second replica (replicaPorts)');
    this.replicas = ports.map((p, i) => ({
      name: `ctl-${i + 1}`, grpcPort: p.grpc, httpPort: p.http, agentPort: 0,
      dir: join(lab.dir, i === 0 ? 'controller' : `controller-${i + 1}`),
      process: undefined,
    }));
  }

  isExternal(id: string): boolean {
    return (this.o.external ?? []).includes(id);
  }

  /** The first replica's process (the only one with SQLite). */
  get controller(): LabProcess | undefined {
    return this.replicas[0]?.process;
  }

  private replica(i: number): Replica {
    const r = this.replicas[i];
    if (!r) throw new Error(`no controller replica ${i}`);
    return r;
  }

  private get controllerDir(): string {
    return this.replica(0).dir;
  }

  /** The controller's TLS files: the agents CA (it also signed the server certificate) and its key. */
  get tlsDir(): string {
    return join(this.lab.dir, 'tls');
  }

  get caFile(): string {
    return join(this.tlsDir, 'ca.pem');
  }

  /** Every replica's agent listener, as agents are given them (controller.addresses, install-agent --controller). */
  get agentAddresses(): string[] {
    return this.replicas.map((r) => `${this.mgmt.gateway}:${r.agentPort}`);
  }

  get grpcAddress(): string {
    return `127.0.0.1:${this.o.grpcPort}`;
  }

  /** Every replica's gRPC address, for hostnetctl. */
  get grpcAddresses(): string[] {
    return this.replicas.map((r) => `127.0.0.1:${r.grpcPort}`);
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.o.httpPort}`;
  }

  httpUrlOf(i: number): string {
    return `http://127.0.0.1:${this.replica(i).httpPort}`;
  }

  private say(line: string): void {
    this.o.log?.(line);
  }

  /** Builds and starts everything; resolves once every agent reports ok. */
  static async build(lab: Lab, o: WorldOptions): Promise<World> {
    const w = new World(lab, o);
    w.say('creating the management network and the controller\'s CA');
    w.mgmt = await lab.managementNetwork();
    await initCa(w.tlsDir, ['127.0.0.1', w.mgmt.gateway]);
    for (const r of w.replicas) r.agentPort = await freePort();
    if (o.store === 'etcd') {
      w.say('starting a 3-member etcd cluster on loopback');
      w.etcd = await EtcdCluster.start(join(lab.dir, 'etcd'), lab.prefix);
    }
    await w.writeControllerConfig();
    w.say(w.replicas.length > 1 ? `starting ${w.replicas.length} controller replicas` : 'starting the controller');
    for (let i = 0; i < w.replicas.length; i++) await w.startController(i);
    w.say('loading the demo data with hostnetctl');
    await w.hostnetctl(['apply', '-f', DEMO_WORLD]);
    for (const doc of o.extraDocs ?? []) await w.hostnetctl(['apply', '-f', doc]);
    w.say('creating namespaces and links');
    await w.buildFabric();
    w.say('starting FRR on the ToRs and the client');
    await w.startFrr();
    w.say('starting the agents, then each host\'s FRR from what its agent wrote');
    const own = [...w.hosts.values()].filter((h) => !w.isExternal(h.id));
    for (const h of own) await w.startAgent(h.id);
    await Promise.all(own.map((h) => w.startHostFrr(h.id)));
    await w.startListeners();
    await w.waitSwitchesApplied();
    if ((o.external ?? []).length > 0) return w;
    w.say('waiting for every host to report ok');
    await w.waitAllOk(90_000);
    await w.waitConverged();
    return w;
  }

  /** Waits until the client reaches every host over both ToRs (over one, active-standby hosts), and every host the client and each other. */
  async waitConverged(timeoutMs = 30_000): Promise<void> {
    const hosts = [...this.hosts.values()];
    await Promise.all([
      ...hosts.flatMap((h) => [`${h.address}/32`, `${h.address6}/128`].map((dst) => waitFor(`the client's ${h.activeStandby ? '' : 'ECMP '}route to ${h.id} (${dst})`, async () => {
        const r = await fibRoute(this.client, dst);
        return r && (h.activeStandby || r.nexthops.length === 2) ? true : undefined;
      }, { timeoutMs, intervalMs: 100 }))),
      ...hosts.flatMap((h) => [`${CLIENT_ADDRESS}/32`, `${CLIENT_ADDRESS6}/128`, ...hosts.filter((o) => o !== h).flatMap((o) => [`${o.address}/32`, `${o.address6}/128`])]
        .map((dst) => waitForRoute(h.ns, dst, { protocol: 'bgp', timeoutMs }))),
    ]);
  }

  private async writeControllerConfig(): Promise<void> {
    const tokens = [
      `  - { name: lab-admin, token: ${this.adminToken}, role: operator }`,
      ...Object.entries(this.tenantTokens).map(([t, tok]) => `  - { name: lab-${t}, token: ${tok}, role: tenant-admin, tenant: ${t} }`),
    ];
    const store = this.etcd
      ? etcdStoreLine(this.etcd.endpoints, { leaseTtl: '3s', compactEvery: '1m' })
      : `store: { engine: sqlite, path: ${this.databasePath} }`;
    for (const r of this.replicas) {
      await mkdir(r.dir, { recursive: true, mode: 0o700 });
      await writeFile(join(r.dir, 'tokens.yaml'), `tokens:\n${tokens.join('\n')}\n`, { mode: 0o600 });
      await writeFile(join(r.dir, 'controller.yaml'), [
        store,
        `replica: ${r.name}`,
        `grpc: { listen: "127.0.0.1:${r.grpcPort}", agentListen: "${this.mgmt.gateway}:${r.agentPort}", certFile: ${this.tlsDir}/server.pem, keyFile: ${this.tlsDir}/server.key }`,
        `ca: { certFile: ${this.tlsDir}/ca.pem, keyFile: ${this.tlsDir}/ca.key, certificateLifetime: ${this.o.certificateLifetime ?? '1h'} }`,
        `http: { listen: "127.0.0.1:${r.httpPort}" }`,
        `tokensFile: ${join(r.dir, 'tokens.yaml')}`,
        `agents: { heartbeat: ${this.o.heartbeat ?? '2s'} }`,
        // The operators' management network (no lab namespace uses it): every host's failsafes accept it.
        `managementPrefixes: [${MANAGEMENT_PREFIX}]`,
        'log: { level: info }',
        '',
      ].join('\n'), { mode: 0o600 });
    }
  }

  /** Starts controller replica `i` (again); resolves once its /healthz answers. */
  async startController(i = 0): Promise<void> {
    const r = this.replica(i);
    const proc = this.lab.spawnProcess(i === 0 ? 'controller' : `controller-${i + 1}`, [...program('controller'), 'run', '--config', join(r.dir, 'controller.yaml')]);
    r.process = proc;
    await waitFor(`${r.name}'s /healthz`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`${r.name} exited (${proc.child.exitCode}); see ${this.lab.dir}/${proc.name}.log`);
      const res = await fetch(`${this.httpUrlOf(i)}/healthz`).catch(() => undefined);
      return res?.ok ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
  }

  /** Kills controller replica `i` at once (SIGKILL: a machine lost). */
  async killController(i: number): Promise<void> {
    const r = this.replica(i);
    const proc = r.process;
    if (!proc) return;
    proc.child.kill('SIGKILL');
    await proc.exited;
    await proc.stop();
    r.process = undefined;
  }

  /** Stops the controller (SIGTERM, graceful); resolves with how it exited (0 when clean) and how long that took. */
  async stopController(i = 0): Promise<{ exit: number | string; ms: number }> {
    this.adminClient?.close();
    this.adminClient = undefined;
    const started = Date.now();
    const r = this.replica(i);
    const proc = r.process;
    await proc?.stop();
    r.process = undefined;
    return { exit: proc ? await proc.exited : 0, ms: Date.now() - started };
  }

  /** The controller's SQLite database. */
  get databasePath(): string {
    return join(this.controllerDir, 'hostnet.db');
  }

  /** Runs hostnetctl as the lab operator; throws with its stderr on failure. */
  async hostnetctl(args: readonly string[], token = this.adminToken): Promise<string> {
    const r = await run([...program('hostnetctl'), ...args, '--server', this.grpcAddresses.join(','), '--ca', this.caFile, '--token', token], { allowFail: true, timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`hostnetctl ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** An AdminService client with the operator token; `metadata` goes with every call. */
  admin(): { client: ServiceClient<typeof AdminService.method>; metadata: Metadata } {
    this.adminClient ??= createClient(AdminService, this.grpcAddress, credentials.createSsl(readFileSync(this.caFile)));
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${this.adminToken}`);
    return { client: this.adminClient, metadata };
  }

  private async buildFabric(): Promise<void> {
    const { client: admin, metadata } = this.admin();
    const [{ hosts }, { subnets }, { networkCatalogs }, { switches }] = await Promise.all([
      admin.listHosts({}, { metadata }), admin.listSubnets({}, { metadata }), admin.listNetworkCatalogs({}, { metadata }), admin.listSwitches({}, { metadata }),
    ]);
    if (switches.map((s) => s.name).join(',') !== 'tor1,tor2') throw new Error(`the lab has two switches, tor1 and tor2; the controller has ${switches.map((s) => s.name).join(', ') || 'none'}`);
    for (const sw of switches) {
      const ns = await this.lab.netns(sw.name);
      // The ToR's agent reaches the controller over the management network, as a host's does.
      await this.mgmt.attach(ns, 'mgmt0');
      this.tors.push(ns);
    }
    this.client = await this.lab.netns('client');
    await this.lab.link(this.client, 'eth0', this.tors[0] as Netns, CLIENT_PORT);
    await this.lab.link(this.client, 'eth1', this.tors[1] as Netns, CLIENT_PORT);
    await this.client.addAddress('lo', `${CLIENT_ADDRESS}/32`);
    await this.client.addAddress('lo', `${CLIENT_ADDRESS6}/128`);
    for (const h of hosts) {
      await this.cable(h, subnets.find((x) => x.id === h.subnetId)?.tenantId ?? '', networkCatalogs.find((c) => c.name === h.catalog));
    }
  }

  /** Creates a host's namespace and links it where the controller says it is cabled. */
  private async cable(h: Host, tenant: string, catalog: NetworkCatalog | undefined): Promise<LabHost> {
    // eth0 to a port of tor1, eth1 to the same port of tor2 (the lab's convention).
    const cabled = (uplink: string, tor: string) => h.switchPorts.find((p) => p.uplink === uplink && p.switchName === tor)?.port;
    const torPort = cabled('eth0', 'tor1');
    if (!torPort || cabled('eth1', 'tor2') !== torPort) throw new Error(`host ${h.id}: the lab cables eth0 to tor1 and eth1 to tor2 on the same port; its switchPorts say otherwise`);
    const ns = await this.lab.netns(h.id);
    await this.mgmt.attach(ns, 'mgmt0');
    await this.lab.link(ns, 'eth0', this.tors[0] as Netns, torPort);
    await this.lab.link(ns, 'eth1', this.tors[1] as Netns, torPort);
    const dir = join(this.lab.dir, `agent-${h.id}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const address = h.addresses.find((a) => !a.includes(':'))?.split('/')[0];
    const address6 = h.addresses.find((a) => a.includes(':'))?.split('/')[0];
    if (!address || !address6) throw new Error(`host ${h.id} lacks an IPv4 or an IPv6 address`);
    const host: LabHost = {
      id: h.id, tenant, subnet: h.subnetId, asn: h.asn, addresses: [...h.addresses], address, address6, ns, torPort,
      bgpPort: catalog?.bgpListen === BgpListen.PORT_20179 ? 20179 : 179,
      activeStandby: catalog?.multipath === Multipath.ACTIVE_STANDBY, configPath: join(dir, 'agent.yaml'), stateDir: join(dir, 'state'),
      frr: undefined, agent: undefined,
    };
    this.hosts.set(h.id, host);
    return host;
  }

  /**
   * Deploys a server at runtime as provisioning does: the host created
   * through the admin API, cabled to `port` of both ToRs (whose agents turn
   * the port into a routed port with its filter), then its agent and FRR
   * started. Resolves once its agent runs; reachability is the caller's to
   * wait for.
   */
  async deployHost(o: { id: string; subnetId: string; catalog: string; asn: number; port: string }): Promise<LabHost> {
    const { client: admin, metadata } = this.admin();
    const { host } = await admin.createHost({
      host: { id: o.id, subnetId: o.subnetId, catalog: o.catalog, asn: o.asn, switchPorts: [{ uplink: 'eth0', switchName: 'tor1', port: o.port }, { uplink: 'eth1', switchName: 'tor2', port: o.port }] },
    }, { metadata });
    if (!host) throw new Error(`host ${o.id} not created`);
    const [{ subnet }, { networkCatalog }] = await Promise.all([admin.getSubnet({ id: o.subnetId }, { metadata }), admin.getNetworkCatalog({ name: o.catalog }, { metadata })]);
    await this.cable(host, subnet?.tenantId ?? '', networkCatalog);
    await this.startAgent(o.id);
    await this.startHostFrr(o.id);
    const h = this.host(o.id);
    this.startListenersOf(h);
    return h;
  }

  /**
   * Releases a server to the pool: the host deleted through the admin API
   * and its agent stopped. Its FRR is left running and advertising (a server
   * on its way back to the pool, or one whose tenant kept it): only the
   * switches' release keeps its address out of the fabric.
   */
  async releaseHost(id: string): Promise<void> {
    const { client: admin, metadata } = this.admin();
    await admin.deleteHost({ id }, { metadata });
    await this.stopAgent(id);
  }

  /**
   * The ToRs' FRR starts bare; each ToR's agent (`hostnet-agent tor`,
   * enrolled like a host's) applies what the controller compiled for its
   * switch: nothing on a ToR is written by the lab. The client is outside
   * the product (the fabric beyond the ToRs) and is configured here.
   */
  private async startFrr(): Promise<void> {
    const starts = this.tors.map((ns) => Frr.start(ns, { config: `frr defaults datacenter\nhostname ${ns.short}\n` }));
    starts.push(Frr.start(this.client, {
      config: torConfig({
        hostname: 'client', asn: 65200, routerId: CLIENT_ADDRESS, ports: ['eth0', 'eth1'], networks: [`${CLIENT_ADDRESS}/32`, `${CLIENT_ADDRESS6}/128`], multipathRelax: true,
      }),
    }));
    const [tor1, tor2] = await Promise.all(starts);
    this.torFrr.push(tor1 as Frr, tor2 as Frr);
    // Their agents apply while the hosts' start (World.build waits for both).
    for (const ns of this.tors) await this.startTorAgent(ns.short);
  }

  /** Starts a ToR's agent in its namespace (`hostnet-agent tor`): a first start enrolls with a new token. */
  async startTorAgent(name: string): Promise<LabProcess> {
    const i = this.tors.findIndex((ns) => ns.short === name);
    const ns = this.tors[i];
    const frr = this.torFrr[i];
    if (!ns || !frr) throw new Error(`no lab ToR ${name}`);
    const dir = join(this.lab.dir, `agent-${name}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const stateDir = join(dir, 'state');
    const tokenFile = join(dir, 'enrollment-token');
    if (!(await stat(join(stateDir, 'tls', 'agent.pem')).catch(() => undefined))) await writeFile(tokenFile, await this.enrollmentToken(name), { mode: 0o600 });
    const configPath = join(dir, 'agent.yaml');
    await writeFile(configPath, this.agentConfig(name, {
      stateDir, caFile: this.caFile, enrollmentTokenFile: tokenFile,
      frr: { confDir: frr.dir, runDir: frr.dir, vtySocket: frr.dir, daemons: join(frr.dir, 'daemons'), commandLog: join(frr.dir, 'commands.log') },
    }));
    const agent = ns.spawn('tor-agent', [...program('agent'), 'tor', '--config', configPath]);
    this.torAgents.set(name, agent);
    return agent;
  }

  /** Stops a ToR's agent (FRR keeps what it applied). */
  async stopTorAgent(name: string): Promise<void> {
    await this.torAgents.get(name)?.stop();
    this.torAgents.delete(name);
  }

  /** Waits until every switch's agent has applied the controller's current configuration of it (on any replica). */
  async waitSwitchesApplied(timeoutMs = 30_000): Promise<void> {
    type SwitchView = { name: string; version: string; appliedVersion: string };
    await waitFor('the ToR agents applying their switches\' configuration', async () => {
      const views = await Promise.all(this.replicas.map((_, i) => this.api<SwitchView[]>('/api/v1/switches', i).catch(() => [] as SwitchView[])));
      const behind = this.tors.map((ns) => ns.short).filter((name) => !views.some((v) => v.some((s) => s.name === name && s.appliedVersion === s.version)));
      if (behind.length === 0) return true;
      throw new Error(`not applied on ${behind.join(', ')}`);
    }, { timeoutMs, intervalMs: 100 });
  }

  /**
   * Starts a host's FRR the way the container does: after its agent has
   * written frr.conf and FRR's start options (the daemons file: bgpd's listen
   * port comes from there), reading both.
   */
  async startHostFrr(id: string): Promise<Frr> {
    const h = this.host(id);
    const dir = await Frr.prepare(h.ns);
    await waitFor(`${id}'s agent writing frr.conf`, async () => ((await stat(join(dir, 'frr.conf')).catch(() => undefined)) ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 50 });
    h.frr = await Frr.start(h.ns, { daemonsFile: join(dir, 'daemons') });
    return h.frr;
  }

  /**
   * Writes the host's agent.yaml and starts its agent; `wrap` prefixes the
   * command (e.g. setpriv), `env` adds to its environment (e.g. NOTIFY_SOCKET).
   */
  async startAgent(id: string, o: { wrap?: readonly string[]; env?: Record<string, string> } = {}): Promise<LabProcess> {
    const h = this.host(id);
    if (this.isExternal(id)) throw new Error(`${id} is external: its agent runs elsewhere`);
    const frr = await Frr.prepare(h.ns);
    const tokenFile = join(h.stateDir, '..', 'enrollment-token');
    // A first start enrolls with a new token; later starts have their certificate.
    if (!(await stat(join(h.stateDir, 'tls', 'agent.pem')).catch(() => undefined))) await writeFile(tokenFile, await this.enrollmentToken(id), { mode: 0o600 });
    await writeFile(h.configPath, this.agentConfig(id, {
      stateDir: h.stateDir, caFile: this.caFile, enrollmentTokenFile: tokenFile,
      frr: { confDir: frr, runDir: frr, vtySocket: frr, daemons: join(frr, 'daemons'), commandLog: join(frr, 'commands.log') },
    }));
    h.agent = h.ns.spawn('agent', [...(o.wrap ?? []), ...program('agent'), 'run', '--config', h.configPath],
      o.env ? { env: { ...process.env, ...o.env } } : {});
    return h.agent;
  }

  /** A one-time enrollment token for `id` (hostnetctl enroll, as provisioning does). */
  async enrollmentToken(id: string): Promise<string> {
    const { client, metadata } = this.admin();
    return (await client.createEnrollment({ hostId: id }, { metadata })).token;
  }

  /**
   * The agent.yaml of a lab host; `frr` omitted: FRR's Debian places (the
   * container); the TLS files omitted: where install-agent puts them.
   */
  agentConfig(id: string, o: { stateDir: string; caFile?: string; enrollmentTokenFile?: string; frr?: { confDir: string; runDir: string; vtySocket: string; daemons: string; commandLog: string } }): string {
    const tls = [...(o.caFile ? [`caFile: ${o.caFile}`] : []), ...(o.enrollmentTokenFile ? [`enrollmentTokenFile: ${o.enrollmentTokenFile}`] : [])];
    return [
      `hostId: ${id}`,
      // Every replica: the agent picks one and moves to another when it goes away.
      `controller: { addresses: [${this.agentAddresses.map((x) => `"${x}"`).join(', ')}]${tls.length > 0 ? `, tls: { ${tls.join(', ')} }` : ''} }`,
      `stateDir: ${o.stateDir}`,
      'loopbackKind: bridge',
      ...(o.frr ? [`frr: { confDir: ${o.frr.confDir}, runDir: ${o.frr.runDir}, vtySocket: ${o.frr.vtySocket}, daemons: ${o.frr.daemons}, commandLog: ${o.frr.commandLog} }`] : []),
      // The controller's interval (agents.heartbeat) replaces this one with its first answer.
      'heartbeat: 30s',
      `checkInterval: ${this.o.checkInterval ?? '1s'}`,
      'frrDriftCheck: 10s',
      'metricsListen: "127.0.0.1:9464"',
      'log: { level: info }',
      '',
    ].join('\n');
  }

  /** Stops a host's agent: SIGTERM (graceful) or SIGKILL (a crash). Nothing it applied is touched. */
  async stopAgent(id: string, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const h = this.host(id);
    const agent = h.agent;
    if (!agent) return;
    if (signal === 'SIGKILL') {
      agent.child.kill('SIGKILL');
      await agent.exited;
    }
    await agent.stop();
    h.agent = undefined;
  }

  private async startListeners(): Promise<void> {
    for (const h of this.hosts.values()) this.startListenersOf(h);
  }

  /** The demo listeners of the host's subnet, in its namespace. */
  private startListenersOf(h: LabHost): void {
    for (const port of LISTEN_PORTS[h.subnet] ?? []) {
      // '::' takes IPv4 (mapped) and IPv6.
      this.listeners.push(h.ns.spawn(`listen-${port}`, [process.execPath, PROBE_HELPER, 'listen', 'tcp', '::', String(port)]));
    }
  }

  /**
   * Calico on a CaaS host, as far as routing goes: a BIRD on the host that
   * owns port 179 and learns container routes over iBGP from a peer (another
   * BIRD, in a namespace of its own behind a veth), exporting them into the
   * host's kernel. Resolves once the host's kernel has the container routes.
   */
  async startCalico(id: string, containerRoutes: readonly string[]): Promise<{ peer: Netns; birdSocket: string; stop(): Promise<void> }> {
    const h = this.host(id);
    const peer = await this.lab.netns(`${id}pods`);
    await this.lab.link(h.ns, 'cali0', peer, 'eth0');
    await h.ns.addAddress('cali0', '10.250.0.1/30');
    await peer.addAddress('eth0', '10.250.0.2/30');
    const conf = (self: string, other: string, body: string) => `router id ${self};\nprotocol device { scan time 5; }\n${body}\n`
      + `protocol bgp calico { local ${self} as 64512; neighbor ${other} as 64512; direct; connect retry time 1; ipv4 { import all; export all; }; }\n`;
    const files = {
      host: conf('10.250.0.1', '10.250.0.2', 'protocol kernel { ipv4 { import none; export all; }; }'),
      pods: conf('10.250.0.2', '10.250.0.1', `protocol static { ipv4; ${containerRoutes.map((r) => `route ${r} blackhole;`).join(' ')} }`),
    };
    const socket = (who: string) => join(this.lab.dir, `bird-${id}-${who}.ctl`);
    const birds: LabProcess[] = [];
    for (const [who, ns] of [['host', h.ns], ['pods', peer]] as const) {
      const file = join(this.lab.dir, `bird-${id}-${who}.conf`);
      await writeFile(file, files[who]);
      birds.push(ns.spawn(`bird-${who}`, ['bird', '-f', '-c', file, '-s', socket(who), '-P', join(this.lab.dir, `bird-${id}-${who}.pid`)]));
    }
    for (const r of containerRoutes) await waitForRoute(h.ns, r, { protocol: 'bird', timeoutMs: 30_000 });
    return {
      peer,
      birdSocket: socket('host'),
      stop: async () => {
        await Promise.all(birds.map((b) => b.stop()));
        for (const r of containerRoutes) await h.ns.exec(['ip', 'route', 'del', r], { allowFail: true });
      },
    };
  }

  host(id: string): LabHost {
    const h = this.hosts.get(id);
    if (!h) throw new Error(`no lab host ${id}`);
    return h;
  }

  /** GET a controller JSON path (of replica `replica`, the first by default) with a token (the operator's by default). */
  async api<T>(path: string, replica = 0, token = this.adminToken): Promise<T> {
    const res = await fetch(`${this.httpUrlOf(replica)}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
    return await res.json() as T;
  }

  /** The agent's own /status, read inside its namespace with `hostnet-agent status --json`. */
  async agentStatus(id: string): Promise<{ ready: string; status: string; checks: { name: string; status: string }[] } & Record<string, unknown>> {
    const h = this.host(id);
    const r = await h.ns.exec([...program('agent'), 'status', '--config', h.configPath, '--json'], { allowFail: true, timeoutMs: 20_000 });
    if (!r.stdout.trim()) throw new Error(`hostnet-agent status on ${id}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as { ready: string; status: string; checks: { name: string; status: string }[] };
  }

  /** Waits until the controller shows every host with `status` (from its agent's reports). */
  async waitAllOk(timeoutMs: number): Promise<void> {
    await waitFor('every lab host to report ok', async () => {
      const hosts = await this.api<HostView[]>('/api/v1/hosts');
      const notOk = hosts.filter((h) => h.status !== 'ok');
      if (notOk.length === 0 && hosts.length === this.hosts.size) return true;
      throw new Error(notOk.map((h) => `${h.id} ${h.status} ${h.checks.filter((c) => c.status !== 'ok').map((c) => `${c.name}: ${c.reason}`).join('; ')}`).join(' | '));
    }, { timeoutMs, intervalMs: 250 });
  }

  topology(): Topology {
    return {
      controller: {
        grpc: this.grpcAddress, http: this.httpUrl, agentAddresses: this.agentAddresses, ca: this.caFile,
        adminToken: this.adminToken, tenantTokens: { ...this.tenantTokens }, log: join(this.lab.dir, 'controller.log'),
        store: this.etcd ? 'etcd' : 'sqlite',
        replicas: this.replicas.map((r, i) => ({
          name: r.name, grpc: `127.0.0.1:${r.grpcPort}`, http: this.httpUrlOf(i), log: join(this.lab.dir, `${r.process?.name ?? (i === 0 ? 'controller' : `controller-${i + 1}`)}.log`),
        })),
        etcd: this.etcd?.endpoints ?? [],
      },
      tors: this.tors.map((ns, i) => ({ name: ns.short, namespace: ns.name, asn: TOR_ASNS[i] as number, vtySocket: this.torFrr[i]?.dir ?? '' })),
      client: { namespace: this.client.name, address: CLIENT_ADDRESS },
      hosts: [...this.hosts.values()].map((h) => ({
        id: h.id, tenant: h.tenant, subnet: h.subnet, namespace: h.ns.name, addresses: h.addresses, asn: h.asn,
        uplinks: { eth0: `${this.tors[0]?.short ?? ''} ${h.torPort}`, eth1: `${this.tors[1]?.short ?? ''} ${h.torPort}` },
        agentConfig: h.configPath, vtySocket: h.frr?.dir ?? '',
      })),
      dir: this.lab.dir,
    };
  }

  /** Closes the admin client; the Lab's teardown stops the processes and removes the namespaces. */
  /** Closes the admin client and stops etcd (the lab's teardown stops the other processes). */
  async close(): Promise<void> {
    this.adminClient?.close();
    await this.etcd?.stop();
  }
}
