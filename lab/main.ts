// `npm run lab` (scripts/lab): brings the lab up, prints where to look, and
// returns; `npm run lab -- down` removes all of it; `npm run lab -- status`
// prints the same overview with every host's health; `npm run lab -- deploy
// h5` / `release h5` deploys a server at runtime (created with its switch
// ports, cabled, its agent and FRR started) or releases it to the pool.
// Idempotent: a lab that is up is left as it is.
//
// The namespaces and processes belong to a supervisor (`serve`), started
// detached, that builds the World and tears it down on SIGTERM; deploy and
// release are asked of it over a unix socket. Its pid, log, socket and the
// topology live in /run/hostnet-lab.
import { spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab, sweep, waitFor } from '../test/lab/index.js';
import type { HostView } from '../controller/src/http.js';
import { CLIENT_ADDRESS, PROBE_HELPER, type Topology, World, program } from './world.js';

// A second lab (the e2e test of this command) sets all four: its own
// directory, ports, and namespace letter (sweeps only touch their own letter).
const RUN_DIR = process.env.HOSTNET_LAB_DIR ?? '/run/hostnet-lab';
const GRPC_PORT = Number(process.env.HOSTNET_LAB_GRPC_PORT ?? 17443);
const HTTP_PORT = Number(process.env.HOSTNET_LAB_HTTP_PORT ?? 18080);
const KIND = process.env.HOSTNET_LAB_KIND ?? 'l';
/** The second replica's ports (store etcd): the first's plus one unless given. */
const REPLICA2 = {
  grpc: Number(process.env.HOSTNET_LAB_GRPC_PORT2 ?? GRPC_PORT + 1), http: Number(process.env.HOSTNET_LAB_HTTP_PORT2 ?? HTTP_PORT + 1),
};
const TOPOLOGY = join(RUN_DIR, 'topology.json');
const PID_FILE = join(RUN_DIR, 'supervisor.pid');
const LOG_FILE = join(RUN_DIR, 'supervisor.log');
const BIN_DIR = join(RUN_DIR, 'bin');
const SOCKET = join(RUN_DIR, 'supervisor.sock');

const out = (line = ''): void => { process.stdout.write(`${line}\n`); };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function supervisorPid(): Promise<number | undefined> {
  const pid = Number((await readFile(PID_FILE, 'utf8').catch(() => '')).trim());
  return pid > 0 && alive(pid) ? pid : undefined;
}

async function readTopology(): Promise<Topology | undefined> {
  const text = await readFile(TOPOLOGY, 'utf8').catch(() => undefined);
  return text ? JSON.parse(text) as Topology : undefined;
}

async function tail(file: string, lines = 30): Promise<string> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(-lines).join('\n');
}

async function portTaken(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) }).catch((err: Error) => err);
  return !(res instanceof Error && /ECONNREFUSED/.test(String((res.cause as Error | undefined)?.message ?? res.message)));
}

async function up(store: Store): Promise<number> {
  if (await supervisorPid()) {
    const topo = await waitFor('the lab to finish starting', readTopology, { timeoutMs: 180_000, intervalMs: 500 });
    out('The lab is already up; nothing changed.');
    printOverview(topo);
    return 0;
  }
  // Leftovers of a lab whose supervisor died.
  await sweep({ kind: KIND, baseDir: RUN_DIR });
  await rm(RUN_DIR, { recursive: true, force: true });
  for (const port of [GRPC_PORT, HTTP_PORT, ...(store === 'etcd' ? [REPLICA2.grpc, REPLICA2.http] : [])]) {
    if (await portTaken(port)) {
      process.stderr.write(`lab: port ${port} on 127.0.0.1 is in use by another program; the lab's controller needs it\n`);
      return 1;
    }
  }
  await mkdir(RUN_DIR, { recursive: true, mode: 0o755 });
  const log = openSync(LOG_FILE, 'a');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, 'serve', '--store', store], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  await writeFile(PID_FILE, `${child.pid}\n`);
  out(`Starting the lab (log: ${LOG_FILE}) ...`);
  let topo: Topology;
  try {
    topo = await waitFor('the lab to start', async () => {
      if (child.pid === undefined || !alive(child.pid)) throw new Error('the lab supervisor exited');
      return readTopology();
    }, { timeoutMs: 240_000, intervalMs: 500 });
  } catch (err) {
    process.stderr.write(`lab: ${(err as Error).message}\n--- ${LOG_FILE} ---\n${await tail(LOG_FILE)}\n`);
    await down(true);
    return 1;
  }
  printOverview(topo);
  return 0;
}

async function down(quiet = false): Promise<number> {
  const pid = await supervisorPid();
  if (pid) {
    process.kill(pid, 'SIGTERM');
    await waitFor('the lab supervisor to stop', async () => (alive(pid) ? undefined : true), { timeoutMs: 60_000, intervalMs: 200 })
      .catch(() => { process.kill(pid, 'SIGKILL'); });
  }
  const swept = await sweep({ kind: KIND, baseDir: RUN_DIR });
  await rm(RUN_DIR, { recursive: true, force: true });
  if (!quiet) out(pid || swept.length > 0 ? 'The lab is down: namespaces, processes and files removed.' : 'No lab was running.');
  return 0;
}

async function status(): Promise<number> {
  const topo = await readTopology();
  if (!topo || !(await supervisorPid())) {
    out('The lab is not running; start it with `npm run lab`.');
    return 1;
  }
  printOverview(topo);
  const hosts = await fetch(`${topo.controller.http}/api/v1/hosts`, { headers: { authorization: `Bearer ${topo.controller.adminToken}` } }).then((r) => r.json() as Promise<HostView[]>)
    .catch(() => undefined);
  out('Hosts (from the controller):');
  if (!hosts) out('  the controller does not answer');
  for (const h of hosts ?? []) out(`  ${h.id.padEnd(6)}${h.status.padEnd(10)}applied ${h.appliedVersion || '-'}`);
  return 0;
}

function printOverview(t: Topology): void {
  const host = (id: string) => t.hosts.find((h) => h.id === id);
  const h1 = host('h1');
  const h2 = host('h2');
  out();
  const replicas = t.controller.replicas;
  const what = t.controller.store === 'etcd' ? `${replicas.length} controller replicas on a 3-member etcd` : 'a controller';
  out(`hostnet lab: ${what}, ${t.tors.length} ToRs, ${t.hosts.length} hosts with agents, a client (files and logs: ${t.dir})`);
  out();
  for (const r of replicas) {
    const name = replicas.length > 1 ? ` (${r.name})` : '';
    out(`  Dashboard       ${r.http}/${name}  (sign in with a token below)`);
    out(`  Dashboard API   ${r.http}/api/v1/hosts${name}`);
    out(`  gRPC (admin)    ${r.grpc}${name}  (TLS: --ca ${t.controller.ca})`);
  }
  out(`  Agent listeners ${t.controller.agentAddresses.join(', ')}  (mutual TLS; each agent enrolled with a one-time token)`);
  if (t.controller.etcd.length > 0) out(`  etcd            ${t.controller.etcd.join(', ')}`);
  out(`  Admin token     ${t.controller.adminToken}`);
  for (const [tenant, token] of Object.entries(t.controller.tenantTokens)) out(`  ${tenant} token  ${token}  (its hosts only)`);
  out(`  Topology        ${TOPOLOGY}`);
  out();
  for (const h of t.hosts) out(`  ${h.id}  ${h.tenant}/${h.subnet}  ${h.addresses.join(', ')}  namespace ${h.namespace}`);
  out(`  client  ${t.client.address}  namespace ${t.client.namespace}`);
  out();
  out('Try:');
  out(`  export PATH=${BIN_DIR}:$PATH HOSTNET_SERVER=${replicas.map((r) => r.grpc).join(',')} HOSTNET_CA=${t.controller.ca} HOSTNET_TOKEN=${t.controller.adminToken}`);
  out('  hostnetctl get hosts');
  out(`  curl -s -H "authorization: Bearer $HOSTNET_TOKEN" ${t.controller.http}/api/v1/hosts | python3 -m json.tool`);
  out('  lab-probe client h1 443          # connected: a-web allows 443 from a-clients');
  out('  lab-probe client h1 8080         # timeout: nothing allows 8080 (default deny)');
  out('  hostnetctl apply -f lab/examples/a-web-allow-8080.yaml');
  out('  lab-probe client h1 8080         # connected, a second later');
  if (h2) out(`  ip netns exec ${h2.namespace} nft flush ruleset; sleep 1; curl -s -H "authorization: Bearer $HOSTNET_TOKEN" ${t.controller.http}/api/v1/hosts/h2   # repaired; see "events"`);
  if (h1) out(`  ip netns exec ${h1.namespace} hostnet-agent status --config ${h1.agentConfig}`);
  if (replicas.length > 1) out(`  pkill -9 -f ${t.dir}/controller/controller.yaml; sleep 2; curl -s -H "authorization: Bearer $HOSTNET_TOKEN" ${replicas[1]?.http ?? ''}/api/v1/hosts   # ${replicas[0]?.name ?? ''} gone: its agents are on ${replicas[1]?.name ?? ''}`);
  out('  npm run lab -- deploy h5         # a new server on a free port of both ToRs, reachable in seconds');
  out('  npm run lab -- release h5        # back to the pool: its /32 leaves both ToRs, then its address is free');
  out('  npm run lab -- status            # this overview and every host\'s health');
  out('  npm run lab -- down              # remove everything');
  out();
}

/** The wrappers the overview's commands use, in /run/hostnet-lab/bin. */
async function writeBin(t: Topology): Promise<void> {
  await mkdir(BIN_DIR, { recursive: true });
  const sh = (argv: string[]) => `#!/bin/sh\nexec ${argv.map((a) => `'${a}'`).join(' ')} "$@"\n`;
  const cases = [...t.hosts.map((h) => `  ${h.id}) ns=${h.namespace}; addr=${h.addresses[0]?.split('/')[0] ?? ''} ;;`),
    `  client) ns=${t.client.namespace}; addr=${t.client.address} ;;`];
  const files: Record<string, string> = {
    hostnetctl: sh(program('hostnetctl')),
    'hostnet-agent': sh(program('agent')),
    'lab-probe': [
      '#!/bin/sh',
      '# lab-probe FROM TO PORT: a TCP connect from one lab namespace to another host\'s address.',
      '[ $# -eq 3 ] || { echo "usage: lab-probe FROM TO PORT (names: client, h1, h2, h3)" >&2; exit 2; }',
      'resolve() { case "$1" in', ...cases, '  *) echo "lab-probe: no lab node $1" >&2; exit 2 ;;', 'esac; }',
      'resolve "$1"; from=$ns', 'resolve "$2"; to=$addr',
      `exec ip netns exec "$from" '${process.execPath}' '${PROBE_HELPER}' connect tcp "$to" "$3" 1000`,
      '',
    ].join('\n'),
  };
  for (const [name, text] of Object.entries(files)) {
    await writeFile(join(BIN_DIR, name), text);
    await chmod(join(BIN_DIR, name), 0o755);
  }
}

/** What `deploy` and `release` ask of the supervisor (one JSON line each way). */
interface Request { readonly op: 'deploy' | 'release'; readonly id: string; readonly port?: string; readonly subnet?: string; readonly asn?: number }

/** Deploys or releases a host in the supervisor's world; the topology and wrappers follow. */
async function handle(world: World, r: Request): Promise<string> {
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(r.id)) throw new Error(`"${r.id}" is not a lab host name`);
  if (r.op === 'release') {
    await world.releaseHost(r.id);
    world.hosts.delete(r.id);
  } else {
    const used = new Set([...world.hosts.values()].map((h) => h.torPort));
    const { client, metadata } = world.admin();
    const ports = (await client.getSwitch({ name: 'tor1' }, { metadata })).switch?.ports ?? [];
    const port = r.port ?? ports.find((p) => !used.has(p));
    if (!port) throw new Error('every server port of the lab\'s ToRs is taken');
    const h = await world.deployHost({ id: r.id, subnetId: r.subnet ?? 'a-web', catalog: 'standard', asn: r.asn ?? 65100 + world.hosts.size + 1, port });
    // Its agent reports ok (firewall applied, both sessions up), the client has its route over both ToRs,
    // and it has its route back to the client (a session up is not yet the routes learned over it:
    // without this, the client's first SYN could reach the server and its answer have nowhere to go).
    await waitFor(`${r.id} ok and reachable from the client over both ToRs`, async () => {
      const view = await world.api<HostView>(`/api/v1/hosts/${r.id}`).catch(() => undefined);
      const [route] = (await world.client.routes(`${h.address}/32`)) as { nexthops?: unknown[] }[];
      const back = await h.ns.routes(`${CLIENT_ADDRESS}/32`);
      return view?.status === 'ok' && (route?.nexthops?.length ?? 0) === 2 && back.length > 0 ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
  }
  await writeTopology(world);
  const h = world.hosts.get(r.id);
  return r.op === 'release'
    ? `${r.id} released: deleted, its agent stopped; its ports are back in the pool once both ToRs applied it, and its addresses free after that`
    : `${r.id} deployed on port ${h?.torPort ?? '?'} of both ToRs: ${h?.addresses.join(', ') ?? ''}, reachable from the client`;
}

async function writeTopology(world: World): Promise<void> {
  const topo = world.topology();
  await writeBin(topo);
  await writeFile(`${TOPOLOGY}.tmp`, `${JSON.stringify(topo, null, 2)}\n`);
  await rename(`${TOPOLOGY}.tmp`, TOPOLOGY);
}

/** Sends a request to the running lab's supervisor and prints its answer. */
async function ask(r: Request): Promise<number> {
  if (!(await supervisorPid())) {
    out('The lab is not running; start it with `npm run lab`.');
    return 1;
  }
  const answer = await new Promise<{ ok: boolean; message: string }>((resolve, reject) => {
    const c = createConnection(SOCKET, () => c.end(`${JSON.stringify(r)}\n`));
    let data = '';
    c.on('data', (d) => { data += d.toString(); });
    c.on('end', () => { try { resolve(JSON.parse(data) as { ok: boolean; message: string }); } catch { reject(new Error(`no answer from the lab supervisor (${data.slice(0, 200)})`)); } });
    c.on('error', reject);
  });
  (answer.ok ? process.stdout : process.stderr).write(`${answer.ok ? '' : 'lab: '}${answer.message}\n`);
  return answer.ok ? 0 : 1;
}

/** The supervisor: builds the world, writes the topology, tears down on SIGTERM. */
async function serve(store: Store): Promise<number> {
  const lab = await Lab.create({ kind: KIND, id: 'main', baseDir: RUN_DIR });
  let world: World | undefined;
  const stop = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  try {
    world = await World.build(lab, {
      grpcPort: GRPC_PORT, httpPort: HTTP_PORT, heartbeat: '5s', checkInterval: '2s', store, replicaPorts: [REPLICA2],
      log: (l) => out(`${new Date().toISOString()} ${l}`),
    });
    const w = world;
    // One request at a time, each on its own connection: a JSON line in, a JSON line out.
    let busy: Promise<unknown> = Promise.resolve();
    // Half-open: the request ends the client's side, the answer still goes back on ours.
    const server = createServer({ allowHalfOpen: true }, (c) => {
      let data = '';
      c.on('data', (d) => { data += d.toString(); });
      c.on('end', () => {
        busy = busy.then(async () => {
          const message = await handle(w, JSON.parse(data) as Request).then((m) => ({ ok: true, message: m }), (err: Error) => ({ ok: false, message: err.message }));
          out(`${new Date().toISOString()} ${data.trim()}: ${message.message}`);
          c.end(`${JSON.stringify(message)}\n`);
        });
      });
    });
    await rm(SOCKET, { force: true });
    await new Promise<void>((resolve) => server.listen(SOCKET, resolve));
    await writeTopology(world);
    out(`${new Date().toISOString()} the lab is up`);
    await stop;
    server.close();
  } catch (err) {
    out(`${new Date().toISOString()} the lab failed to start: ${(err as Error).stack ?? String(err)}`);
  }
  out(`${new Date().toISOString()} tearing down`);
  await world?.close();
  await rm(TOPOLOGY, { force: true });
  await lab.teardown();
  return 0;
}

type Store = 'sqlite' | 'etcd';

interface Args { readonly command: string; readonly store: Store; readonly host?: string; readonly options: Record<string, string> }

/**
 * `[up|down|status] [--store sqlite|etcd]`, `deploy HOST [--port swpN] [--subnet ID] [--asn N]`,
 * `release HOST`; the store also from HOSTNET_LAB_STORE.
 */
function parse(argv: readonly string[]): Args | string {
  let command: string | undefined;
  let host: string | undefined;
  let store = process.env.HOSTNET_LAB_STORE ?? 'sqlite';
  const options: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const m = /^--(store|port|subnet|asn)(?:=(.*))?$/.exec(a);
    if (m?.[1]) {
      const v = m[2] ?? argv[++i] ?? '';
      if (m[1] === 'store') store = v;
      else options[m[1]] = v;
    } else if (!command && !a.startsWith('-')) command = a;
    else if (!host && !a.startsWith('-') && (command === 'deploy' || command === 'release')) host = a;
    else return `unknown argument "${a}"`;
  }
  if (store !== 'sqlite' && store !== 'etcd') return `--store takes sqlite or etcd, not "${store}"`;
  if ((command === 'deploy' || command === 'release') && !host) return `${command} needs a host name, e.g. ${command} h5`;
  if (options.asn !== undefined && !/^\d+$/.test(options.asn)) return `--asn takes a number, not "${options.asn}"`;
  return { command: command ?? 'up', store, ...(host ? { host } : {}), options };
}

const args = parse(process.argv.slice(2));
const commands: Record<string, (a: Args) => Promise<number>> = {
  up: (a) => up(a.store), down: () => down(), status: () => status(), serve: (a) => serve(a.store),
  deploy: (a) => ask({ op: 'deploy', id: a.host ?? '', ...(a.options.port ? { port: a.options.port } : {}), ...(a.options.subnet ? { subnet: a.options.subnet } : {}), ...(a.options.asn ? { asn: Number(a.options.asn) } : {}) }),
  release: (a) => ask({ op: 'release', id: a.host ?? '' }),
};
const fn = typeof args === 'string' ? undefined : commands[args.command];
if (typeof args === 'string' || !fn) {
  process.stderr.write(`usage: npm run lab [-- up|down|status|deploy HOST [--port swpN] [--subnet ID] [--asn N]|release HOST] [--store sqlite|etcd]   (${typeof args === 'string' ? args : `unknown command "${args.command}"`})\n`);
  process.exitCode = 2;
} else {
  process.exitCode = await fn(args);
}
