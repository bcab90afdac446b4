// The agent's configuration (/etc/hostnet/agent.yaml), compiled into a
// readonly value. Fields for parts still to come are parsed here as they land.
import type { LevelWithSilent } from 'pino';
import { type Fields, compileYaml, loadConfigFile } from '../../common/config.js';
import { HOST_ID, HOST_ID_HINT, HOST_PORT } from '../../common/names.js';
import { LOG_LEVELS } from '../../common/log.js';

export interface AgentConfig {
  /** This host's id; must match the SAN of its client certificate. */
  readonly hostId: string;
  readonly controller: {
    /** "host:port" of every controller replica's agent listener; the agent picks one at random first. */
    readonly addresses: readonly string[];
    /** The CA the controller's server certificate is checked against. */
    readonly caFile: string;
    /** This host's certificate and key: the agent makes the key, gets the certificate and renews both. */
    readonly certFile: string;
    readonly keyFile: string;
    /** The one-time token install-agent writes; used when there is no usable certificate. */
    readonly enrollmentTokenFile: string;
  };
  /** Where the last applied state is kept (/var/lib/hostnet). */
  readonly stateDir: string;
  /** Operator management prefixes the firewall always accepts. */
  readonly managementPrefixes: readonly string[];
  /** Link kind of the loopbacks: dummy in production, bridge where the kernel lacks dummy. */
  readonly loopbackKind: 'dummy' | 'bridge';
  /**
   * FRR's files: frr.conf (and vtysh.conf), the daemons' pid files, the vty
   * sockets; the start options file whose bgpd line the agent writes (the
   * listen port is a start option); the file FRR logs commands into (hand
   * edits are seen there as they happen).
   */
  readonly frr: {
    readonly confDir: string; readonly runDir: string; readonly vtySocket: string; readonly daemons: string; readonly commandLog: string;
  };
  /** How often health reports go out when nothing changes. */
  readonly heartbeatMs: number;
  /** How often the health checks run (a change is reported at once). */
  readonly checkIntervalMs: number;
  /** How often FRR's running configuration is compared with the applied one. */
  readonly frrDriftCheckMs: number;
  /** Metrics (/metrics) and the status (/status) `hostnet-agent status` reads; keep it on localhost. */
  readonly metricsListen: string;
  readonly logLevel: LevelWithSilent;
}

const ABSOLUTE = /^\/\S+$/;

/** Compiles the raw document; throws ConfigError naming the bad field. */
export function compileAgentConfig(root: Fields): AgentConfig {
  const controller = root.object('controller');
  const tls = controller.object('tls');
  const log = root.object('log');
  const frr = root.object('frr');
  const stateDir = root.string('stateDir', { default: '/var/lib/hostnet' });
  const config: AgentConfig = {
    hostId: root.string('hostId', { pattern: HOST_ID, hint: HOST_ID_HINT }),
    controller: {
      addresses: controller.stringList('addresses', { nonEmpty: true, pattern: HOST_PORT, hint: 'host:port (the controller\'s agent listener)' }),
      caFile: tls.string('caFile', { default: '/etc/hostnet/tls/ca.pem', pattern: ABSOLUTE, hint: 'an absolute path' }),
      certFile: tls.string('certFile', { default: `${stateDir}/tls/agent.pem`, pattern: ABSOLUTE, hint: 'an absolute path' }),
      keyFile: tls.string('keyFile', { default: `${stateDir}/tls/agent.key`, pattern: ABSOLUTE, hint: 'an absolute path' }),
      enrollmentTokenFile: tls.string('enrollmentTokenFile', { default: '/etc/hostnet/tls/enrollment-token', pattern: ABSOLUTE, hint: 'an absolute path' }),
    },
    stateDir,
    managementPrefixes: root.prefixList('managementPrefixes'),
    loopbackKind: root.oneOf('loopbackKind', ['dummy', 'bridge'] as const, 'dummy'),
    frr: {
      confDir: frr.string('confDir', { default: '/etc/frr' }),
      runDir: frr.string('runDir', { default: '/var/run/frr' }),
      vtySocket: frr.string('vtySocket', { default: '/var/run/frr' }),
      daemons: frr.string('daemons', { default: '/etc/frr/daemons', pattern: /^\/\S+$/, hint: 'an absolute path' }),
      commandLog: frr.string('commandLog', { default: '/var/log/frr/hostnet-commands.log', pattern: /^\/\S+$/, hint: 'an absolute path' }),
    },
    heartbeatMs: root.durationMs('heartbeat', '30s'),
    checkIntervalMs: root.durationMs('checkInterval', '5s'),
    frrDriftCheckMs: root.durationMs('frrDriftCheck', '60s'),
    metricsListen: root.string('metricsListen', { default: '127.0.0.1:9464', pattern: HOST_PORT, hint: 'host:port' }),
    logLevel: log.oneOf('level', LOG_LEVELS, 'info'),
  };
  for (const f of [tls, controller, log, frr]) f.done();
  return config;
}

export const parseAgentConfig = (text: string, source = 'agent.yaml'): AgentConfig =>
  compileYaml(text, source, compileAgentConfig);

export const loadAgentConfig = (path: string): Promise<AgentConfig> => loadConfigFile(path, compileAgentConfig);
