// The controller's configuration (hostnet-controller --config FILE), compiled
// into a readonly value. Fields for parts still to come are parsed as they land.
import type { LevelWithSilent } from 'pino';
import { ConfigError, type Fields, compileYaml, loadConfigFile } from '../../common/config.js';
import { HOST_PORT } from '../../common/names.js';
import { LOG_LEVELS } from '../../common/log.js';

export interface ControllerConfig {
  readonly store: {
    readonly engine: 'sqlite' | 'etcd';
    /** SQLite database file (engine sqlite). */
    readonly path: string;
  };
  readonly grpc: {
    readonly listen: string;
    readonly certFile: string | undefined;
    readonly keyFile: string | undefined;
    /** CA that signs agent certificates; when set, agents must present one. */
    readonly clientCaFile: string | undefined;
    readonly maxMessageBytes: number;
    /**
     * A unix socket also served, without TLS, for agents on the same machine
     * (the lab's agents live in other network namespaces, where the TCP
     * address is unreachable; a socket file is not tied to a namespace).
     */
    readonly localSocket: string | undefined;
  };
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
  // Refused here, so that check-config says so too, until the etcd engine exists.
  if (engine === 'etcd') throw new ConfigError(store.field('engine'), 'etcd is not available in this version; use sqlite (one controller)');
  if (store.has('endpoints')) throw new ConfigError(store.field('endpoints'), 'is only for engine etcd');
  const config: ControllerConfig = {
    store: {
      engine,
      path: store.string('path', { default: '/var/lib/hostnet-controller/hostnet.db' }),
    },
    grpc: {
      listen: grpc.string('listen', { default: '0.0.0.0:7443', pattern: HOST_PORT, hint: 'host:port' }),
      certFile: grpc.has('certFile') ? grpc.string('certFile') : undefined,
      keyFile: grpc.has('keyFile') ? grpc.string('keyFile') : undefined,
      clientCaFile: grpc.has('clientCaFile') ? grpc.string('clientCaFile') : undefined,
      maxMessageBytes: grpc.int('maxMessageBytes', { min: 1024, max: 64 << 20, default: 4 << 20 }),
      localSocket: grpc.has('localSocket') ? grpc.string('localSocket', { pattern: /^\/\S+$/, hint: 'an absolute path' }) : undefined,
    },
    http: { listen: http.string('listen', { default: '127.0.0.1:8080', pattern: HOST_PORT, hint: 'host:port' }) },
    publicPool: root.has('publicPool') ? root.prefix('publicPool') : undefined,
    managementPrefixes: root.prefixList('managementPrefixes'),
    agents: { heartbeatMs: agents.durationMs('heartbeat', '30s') },
    tokensFile: root.has('tokensFile') ? root.string('tokensFile') : undefined,
    logLevel: log.oneOf('level', LOG_LEVELS, 'info'),
  };
  for (const f of [store, grpc, http, log, agents]) f.done();
  if (config.agents.heartbeatMs < 1000) throw new ConfigError(agents.field('heartbeat'), 'must be at least 1s');
  return config;
}

export const parseControllerConfig = (text: string, source = 'controller.yaml'): ControllerConfig =>
  compileYaml(text, source, compileControllerConfig);

export const loadControllerConfig = (path: string): Promise<ControllerConfig> =>
  loadConfigFile(path, compileControllerConfig);
