// The controller's configuration (hostnet-controller --config FILE), compiled
// into a readonly value. Fields for parts still to come are parsed as they land.
import type { LevelWithSilent } from 'pino';
import { ConfigError, type Fields, compileYaml, loadConfigFile } from '../../common/config.js';
import { hostname } from 'node:os';
import { HOST_ID, HOST_PORT } from '../../common/names.js';
import { LOG_LEVELS } from '../../common/log.js';

export interface EtcdConfig {
  /** host:port of every member. */
  readonly endpoints: readonly string[];
  /** Every key of this controller group lives under it. */
  readonly prefix: string;
  /** TLS to etcd: the CA that signs the members' certificates, and this replica's client certificate. */
  readonly caFile: string | undefined;
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  /** The replica's session lease: its agents show as connected this long after it died. */
  readonly leaseTtlSeconds: number;
  /** How often one replica compacts etcd's history (to the revision of the previous round). */
  readonly compactEveryMs: number;
  /** etcd's --max-txn-ops and --max-request-bytes, as the cluster is configured (etcd's defaults: 128, 1.5 MiB). */
  readonly maxTxnOps: number;
  readonly maxRequestBytes: number;
}

export interface ControllerConfig {
  readonly store: {
    readonly engine: 'sqlite' | 'etcd';
    /** SQLite database file (engine sqlite). */
    readonly path: string;
    /** Engine etcd. */
    readonly etcd: EtcdConfig | undefined;
  };
  /** This replica's name among the replicas (engine etcd): unique, stable across restarts. */
  readonly replica: string;
  readonly grpc: {
    /** Admin callers (bearer tokens) and enrollment: server TLS when certFile/keyFile are set. */
    readonly listen: string;
    /** Agents: mutual TLS, client certificates signed by the agents CA; none: this replica serves no agents. */
    readonly agentListen: string | undefined;
    /** The controller's server certificate (with its chain) and key, for both listeners. */
    readonly certFile: string | undefined;
    readonly keyFile: string | undefined;
    readonly maxMessageBytes: number;
  };
  /** The agents CA: it signs agents' certificates (every replica has the same files). */
  readonly ca: {
    readonly certFile: string;
    readonly keyFile: string;
    readonly certificateLifetimeMs: number;
    readonly enrollmentTokenLifetimeMs: number;
  } | undefined;
  readonly http: { readonly listen: string };
  /** The pool public /32s are allocated from (hosts whose catalog has a public network). */
  readonly publicPool: string | undefined;
  /** Operator management prefixes every host's firewall accepts (its failsafes). */
  readonly managementPrefixes: readonly string[];
  readonly agents: {
    /** How often agents report when nothing changes (told to them in every ReportHealth answer); stale after three. */
    readonly heartbeatMs: number;
  };
  /** YAML file of bearer tokens and their roles. */
  readonly tokensFile: string | undefined;
  readonly logLevel: LevelWithSilent;
}

/** Compiles the raw document; throws ConfigError naming the bad field. */
export function compileControllerConfig(root: Fields): ControllerConfig {
  const store = root.object('store');
  const grpc = root.object('grpc');
  const http = root.object('http');
  const log = root.object('log');
  const agents = root.object('agents');
  const engine = store.oneOf('engine', ['sqlite', 'etcd'] as const, 'sqlite');
  if (engine === 'etcd' && !store.has('etcd')) throw new ConfigError(store.field('etcd'), 'is required for engine etcd (endpoints at least)');
  if (engine === 'sqlite' && store.has('etcd')) throw new ConfigError(store.field('etcd'), 'is only for engine etcd');
  if (engine === 'etcd' && store.has('path')) throw new ConfigError(store.field('path'), 'is only for engine sqlite');
  const etcd = engine === 'etcd' ? store.object('etcd') : undefined;
  for (const [key, instead] of [['clientCaFile', 'ca.certFile (the agents CA) and grpc.agentListen'], ['localSocket', 'grpc.agentListen: agents connect over mutual TLS']]) {
    if (grpc.has(key as string)) throw new ConfigError(grpc.field(key as string), `is gone; use ${instead as string}`);
  }
  const ca = root.has('ca') ? root.object('ca') : undefined;
  const config: ControllerConfig = {
    store: {
      engine,
      path: engine === 'sqlite' ? store.string('path', { default: '/var/lib/hostnet-controller/hostnet.db' }) : '',
      etcd: etcd ? {
        endpoints: etcd.stringList('endpoints', { nonEmpty: true, pattern: HOST_PORT, hint: 'host:port' }),
        prefix: etcd.string('prefix', { default: '/hostnet/v1/', pattern: /^\/[\w./-]*\/$/, hint: 'a key prefix like /hostnet/v1/' }),
        caFile: etcd.has('caFile') ? etcd.string('caFile') : undefined,
        certFile: etcd.has('certFile') ? etcd.string('certFile') : undefined,
        keyFile: etcd.has('keyFile') ? etcd.string('keyFile') : undefined,
        leaseTtlSeconds: Math.round(etcd.durationMs('leaseTtl', '5s') / 1000),
        compactEveryMs: etcd.durationMs('compactEvery', '5m'),
        maxTxnOps: etcd.int('maxTxnOps', { min: 16, max: 1_000_000, default: 128 }),
        maxRequestBytes: etcd.int('maxRequestBytes', { min: 64 << 10, max: 64 << 20, default: 1536 << 10 }),
      } : undefined,
    },
    replica: root.string('replica', { default: hostname().toLowerCase(), pattern: HOST_ID, hint: 'a lower-case name like ctl-1' }),
    grpc: {
      listen: grpc.string('listen', { default: '0.0.0.0:7443', pattern: HOST_PORT, hint: 'host:port' }),
      certFile: grpc.has('certFile') ? grpc.string('certFile') : undefined,
      keyFile: grpc.has('keyFile') ? grpc.string('keyFile') : undefined,
      agentListen: grpc.has('agentListen') ? grpc.string('agentListen', { pattern: HOST_PORT, hint: 'host:port' }) : undefined,
      maxMessageBytes: grpc.int('maxMessageBytes', { min: 1024, max: 64 << 20, default: 4 << 20 }),
    },
    ca: ca ? {
      certFile: ca.string('certFile'),
      keyFile: ca.string('keyFile'),
      certificateLifetimeMs: ca.durationMs('certificateLifetime', '7d'),
      enrollmentTokenLifetimeMs: ca.durationMs('enrollmentTokenLifetime', '1h'),
    } : undefined,
    http: { listen: http.string('listen', { default: '127.0.0.1:8080', pattern: HOST_PORT, hint: 'host:port' }) },
    publicPool: root.has('publicPool') ? root.prefix('publicPool') : undefined,
    managementPrefixes: root.prefixList('managementPrefixes'),
    agents: { heartbeatMs: agents.durationMs('heartbeat', '30s') },
    tokensFile: root.has('tokensFile') ? root.string('tokensFile') : undefined,
    logLevel: log.oneOf('level', LOG_LEVELS, 'info'),
  };
  for (const f of [...(etcd ? [etcd] : []), ...(ca ? [ca] : []), store, grpc, http, log, agents]) f.done();
  if ((config.grpc.certFile === undefined) !== (config.grpc.keyFile === undefined)) {
    throw new ConfigError(grpc.field(config.grpc.certFile ? 'keyFile' : 'certFile'), 'certFile and keyFile go together');
  }
  if (config.grpc.agentListen !== undefined) {
    if (!config.grpc.certFile) throw new ConfigError(grpc.field('agentListen'), 'needs grpc.certFile and grpc.keyFile: agents connect with mutual TLS only');
    if (!config.ca) throw new ConfigError(grpc.field('agentListen'), 'needs ca (certFile, keyFile): the agents CA checks and signs agent certificates');
    if (config.grpc.agentListen === config.grpc.listen) throw new ConfigError(grpc.field('agentListen'), 'must differ from grpc.listen');
  }
  if (config.ca && ca) {
    if (config.ca.certificateLifetimeMs < 10_000 || config.ca.certificateLifetimeMs > 90 * 86_400_000) {
      throw new ConfigError(ca.field('certificateLifetime'), 'must be between 10s (for tests) and 90d');
    }
    if (config.ca.enrollmentTokenLifetimeMs < 60_000 || config.ca.enrollmentTokenLifetimeMs > 86_400_000) {
      throw new ConfigError(ca.field('enrollmentTokenLifetime'), 'must be between 1m and 24h');
    }
  }
  const e = config.store.etcd;
  if (e && etcd) {
    if (e.leaseTtlSeconds < 2 || e.leaseTtlSeconds > 60) throw new ConfigError(etcd.field('leaseTtl'), 'must be between 2s and 60s');
    if (e.compactEveryMs < 10_000) throw new ConfigError(etcd.field('compactEvery'), 'must be at least 10s');
    if ((e.certFile === undefined) !== (e.keyFile === undefined)) throw new ConfigError(etcd.field(e.certFile ? 'keyFile' : 'certFile'), 'certFile and keyFile go together');
  }
  if (config.agents.heartbeatMs < 1000) throw new ConfigError(agents.field('heartbeat'), 'must be at least 1s');
  return config;
}

export const parseControllerConfig = (text: string, source = 'controller.yaml'): ControllerConfig =>
  compileYaml(text, source, compileControllerConfig);

export const loadControllerConfig = (path: string): Promise<ControllerConfig> =>
  loadConfigFile(path, compileControllerConfig);
