// The agent's configuration (/etc/hostnet/agent.yaml), compiled into a
// readonly value. Fields for parts still to come are parsed here as they land.
import type { LevelWithSilent } from 'pino';
import { type Fields, HOST_PORT, compileYaml, loadConfigFile } from '../../common/config.js';
import { LOG_LEVELS } from '../../common/log.js';

export interface AgentConfig {
  /** This host's id; must match the SAN of its client certificate. */
  readonly hostId: string;
  readonly controller: {
    /** "host:port" of every controller replica; the agent picks one at random first. */
    readonly addresses: readonly string[];
    readonly caFile: string | undefined;
    readonly certFile: string | undefined;
    readonly keyFile: string | undefined;
  };
  /** Where the last applied state is kept (/var/lib/hostnet). */
  readonly stateDir: string;
  /** Operator management prefixes the firewall always accepts. */
  readonly managementPrefixes: readonly string[];
  /** Link kind of the loopbacks: dummy in production, bridge where the kernel lacks dummy. */
  readonly loopbackKind: 'dummy' | 'bridge';
  readonly heartbeatMs: number;
  readonly metricsListen: string;
  readonly logLevel: LevelWithSilent;
}

const HOST_ID = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Compiles the raw document; throws ConfigError naming the bad field. */
export function compileAgentConfig(root: Fields): AgentConfig {
  const controller = root.object('controller');
  const tls = controller.object('tls');
  const log = root.object('log');
  const config: AgentConfig = {
    hostId: root.string('hostId', { pattern: HOST_ID, hint: 'a lower-case hostname' }),
    controller: {
      addresses: controller.stringList('addresses', { nonEmpty: true, pattern: HOST_PORT, hint: 'host:port' }),
      caFile: tls.has('caFile') ? tls.string('caFile') : undefined,
      certFile: tls.has('certFile') ? tls.string('certFile') : undefined,
      keyFile: tls.has('keyFile') ? tls.string('keyFile') : undefined,
    },
    stateDir: root.string('stateDir', { default: '/var/lib/hostnet' }),
    managementPrefixes: root.prefixList('managementPrefixes'),
    loopbackKind: root.oneOf('loopbackKind', ['dummy', 'bridge'] as const, 'dummy'),
    heartbeatMs: root.durationMs('heartbeat', '30s'),
    metricsListen: root.string('metricsListen', { default: '127.0.0.1:9464', pattern: HOST_PORT, hint: 'host:port' }),
    logLevel: log.oneOf('level', LOG_LEVELS, 'info'),
  };
  tls.done();
  controller.done();
  log.done();
  return config;
}

export const parseAgentConfig = (text: string, source = 'agent.yaml'): AgentConfig =>
  compileYaml(text, source, compileAgentConfig);

export const loadAgentConfig = (path: string): Promise<AgentConfig> => loadConfigFile(path, compileAgentConfig);
