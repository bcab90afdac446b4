// The configured store engine, opened: intent (Store) and status
// (StatusStore), and for etcd the replica's session and the compactor. The
// only place that knows which engines exist.
import { readFile } from 'node:fs/promises';
import { credentials as grpcCredentials } from '@grpc/grpc-js';
import type { Logger } from '../../../common/log.js';
import { ConfigError } from '../../../common/config.js';
import type { ControllerConfig, EtcdConfig } from '../config.js';
import type { Store } from './store.js';
import type { StatusStore } from './status.js';
import { openSqliteStore } from './sqlite.js';
import { EtcdClient } from './etcd/client.js';
import { Session } from './etcd/session.js';
import { openEtcdStore } from './etcd/store.js';
import { etcdStatus } from './etcd/status.js';
import { Compactor } from './etcd/compactor.js';

export interface Engines {
  readonly store: Store;
  readonly status: StatusStore;
  /** Counters for /metrics: relists after a compaction, transactions that conflicted with another replica's. */
  readonly counters: () => { relists: number; conflicts: number; compactions: number };
  close(): Promise<void>;
}

async function etcdCredentials(c: EtcdConfig) {
  if (!c.caFile) return undefined;
  const read = (field: string, path: string | undefined) => (path
    ? readFile(path).catch((err: NodeJS.ErrnoException) => { throw new ConfigError(`store.etcd.${field}`, `cannot read ${path}: ${err.code ?? 'error'}`); })
    : Promise.resolve(undefined));
  const [ca, cert, key] = await Promise.all([read('caFile', c.caFile), read('certFile', c.certFile), read('keyFile', c.keyFile)]);
  return grpcCredentials.createSsl(ca ?? null, key ?? null, cert ?? null);
}

/** Opens the configured engine. Throws ConfigError, or UNAVAILABLE when etcd cannot be reached. */
export async function openEngines(config: ControllerConfig, log: Logger): Promise<Engines> {
  const e = config.store.etcd;
  if (config.store.engine === 'sqlite' || !e) {
    const store = openSqliteStore(config.store.path);
    return { store, status: store, counters: () => ({ relists: 0, conflicts: 0, compactions: 0 }), close: () => store.close() };
  }
  const creds = await etcdCredentials(e);
  const client = new EtcdClient({ endpoints: e.endpoints, ...(creds ? { credentials: creds } : {}) });
  const session = new Session(client, e.leaseTtlSeconds, log);
  const status = etcdStatus(client, session, log, e.prefix);
  try {
    // The session's lease, the intent and the rollout and health rows at once: a restarted replica serves after the longest of them, not their sum.
    status.prefetch();
    const [store] = await Promise.all([
      openEtcdStore({ client, replicaId: config.replica, log, prefix: e.prefix, maxTxnOps: e.maxTxnOps, maxRequestBytes: e.maxRequestBytes }),
      session.start(),
    ]);
    const compactor = new Compactor(client, session, config.replica, log, e.compactEveryMs, `${e.prefix}compactor`);
    compactor.start();
    log.info({ endpoints: e.endpoints, prefix: e.prefix, replica: config.replica, revision: store.revision() }, 'etcd store open');
    return {
      store,
      status,
      counters: () => ({ relists: store.relists, conflicts: store.conflicts, compactions: compactor.compactions }),
      async close() {
        compactor.stop();
        await status.close();
        await store.close();
        // Revoking the lease takes this replica's connection records with it: its agents are elsewhere by now.
        await session.close();
        client.close();
      },
    };
  } catch (err) {
    await status.close().catch(() => undefined);
    await session.close().catch(() => undefined);
    client.close();
    throw err;
  }
}
