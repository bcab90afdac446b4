// A real etcd cluster on loopback (Debian's etcd-server): N members, each a
// process of its own with its own data directory and ports, for the lab's
// `--store etcd` and the tests. Members can be killed (SIGKILL), stopped
// (SIGSTOP) and started again; the leader is found through Maintenance.Status.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { EtcdClient } from '../controller/src/store/etcd/client.js';

export interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly endpoint: string;
  child: ChildProcess | undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A controller's `store:` line for etcd at `endpoints`, as the lab's replicas, the tests' and the
 * benchmarks' write it (keys in the order the config documents them).
 */
export function etcdStoreLine(endpoints: readonly string[], o: { readonly leaseTtl: string; readonly prefix?: string; readonly compactEvery?: string }): string {
  const fields = [
    `endpoints: [${endpoints.map((e) => `"${e}"`).join(', ')}]`,
    ...(o.prefix !== undefined ? [`prefix: "${o.prefix}"`] : []),
    `leaseTtl: ${o.leaseTtl}`,
    ...(o.compactEvery !== undefined ? [`compactEvery: ${o.compactEvery}`] : []),
  ];
  return `store: { engine: etcd, etcd: { ${fields.join(', ')} } }`;
}

export class EtcdCluster {
  private constructor(
    readonly dir: string,
    readonly members: EtcdMember[],
    private readonly token: string,
  ) {}

  /** Starts `size` members named `<prefix>-etcd<i>` under `dir`; resolves once the cluster has a leader. */
  static async start(dir: string, prefix: string, size = 3): Promise<EtcdCluster> {
    const members: EtcdMember[] = [];
    for (let i = 1; i <= size; i++) {
      const [clientPort, peerPort] = [await freePort(), await freePort()];
      members.push({
        name: `${prefix}-etcd${i}`, clientPort, peerPort, dataDir: join(dir, `etcd${i}`), endpoint: `127.0.0.1:${clientPort}`, child: undefined,
      });
    }
    const cluster = new EtcdCluster(dir, members, `${prefix}-${Date.now()}`);
    await mkdir(dir, { recursive: true });
    try {
      await Promise.all(members.map((m) => cluster.startMember(m, 'new')));
      await cluster.waitLeader(30_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  member(name: string): EtcdMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no etcd member ${name}`);
    return m;
  }

  private async startMember(m: EtcdMember, state: 'new' | 'existing'): Promise<void> {
    await mkdir(m.dataDir, { recursive: true });
    const log = await open(join(this.dir, `${m.name}.log`), 'a');
    const initial = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
    const child = spawn('etcd', [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`, '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster', initial, '--initial-cluster-state', state, '--initial-cluster-token', this.token,
      // Loopback: short heartbeats make elections quick after a member is killed.
      '--heartbeat-interval', '100', '--election-timeout', '1000',
      '--logger', 'zap', '--log-outputs', 'stderr',
    ], { stdio: ['ignore', log.fd, log.fd] });
    await log.close();
    m.child = child;
    child.once('exit', () => { if (m.child === child) m.child = undefined; });
  }

  /** The leader's member name, asking each running member (undefined when none knows one). */
  async leader(): Promise<string | undefined> {
    const running = this.members.filter((m) => m.child);
    const client = new EtcdClient({ endpoints: running.map((m) => m.endpoint), callTimeoutMs: 1000 });
    try {
      for (const m of running) {
        const s = await client.status(m.endpoint).catch(() => undefined);
        if (!s || s.leader === 0n) continue;
        const leaderId = s.leader;
        // The member whose own status names itself (member_id) as the leader.
        for (const x of running) {
          const xs = x === m ? s : await client.status(x.endpoint).catch(() => undefined);
          if (xs?.header?.memberId === leaderId) return x.name;
        }
      }
      return undefined;
    } finally {
      client.close();
    }
  }

  async waitLeader(timeoutMs: number): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const l = await this.leader();
      if (l) return l;
      if (Date.now() > until) throw new Error(`etcd: no leader after ${timeoutMs} ms (logs in ${this.dir})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Sends `signal` to a member (SIGKILL: it is gone until restart()). */
  async signal(name: string, signal: NodeJS.Signals): Promise<void> {
    const m = this.member(name);
    const child = m.child;
    if (!child) return;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    } else {
      child.kill(signal);
    }
  }

  /** Starts a killed member again with its data. */
  async restart(name: string): Promise<void> {
    const m = this.member(name);
    if (m.child) return;
    await this.startMember(m, 'existing');
  }

  /** Kills every member and removes the data. */
  async stop(): Promise<void> {
    await Promise.all(this.members.map(async (m) => {
      const child = m.child;
      if (!child) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }));
    await rm(this.dir, { recursive: true, force: true });
  }
}
