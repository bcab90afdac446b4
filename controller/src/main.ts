#!/usr/bin/env node
// hostnet-controller: the POD's network controller. Composition root: the
// only controller module that builds real adapters.
import { readFile } from 'node:fs/promises';
import { type Cli, requireString, runCli } from '../../common/cli.js';
import { createLogger } from '../../common/log.js';
import { VERSION } from '../../common/version.js';
import { addService } from '../../proto/grpc/server.js';
import { AdminService } from '../../proto/gen/hostnet/v1/admin_pb.js';
import { AgentService } from '../../proto/gen/hostnet/v1/agent_pb.js';
import { Agents } from './sync/agents.js';
import { httpServer } from './http.js';
import { peerOf } from './identity/peer.js';
import { AgentsCa, initCa } from './identity/ca.js';
import { type IdentityOptions, checkAccepted, enrollService, renew } from './identity/enrollment.js';
import { EnrollService } from '../../proto/gen/hostnet/v1/identity_pb.js';
import { adminService } from './admin/service.js';
import { Tokens } from './admin/tokens.js';
import { loadControllerConfig } from './config.js';
import { adminCredentials, agentTls, bind, grpcServer, stop } from './server.js';
import { type AgentListener, listenAgents } from './agent-listener.js';
import { openEngines } from './store/engines.js';
import { ConfigError } from '../../common/config.js';
import { splitHostPort } from '../../common/names.js';

/** Runs the controller until SIGTERM/SIGINT. */
async function runController(configPath: string): Promise<number> {
  const bootAt = performance.now();
  const config = await loadControllerConfig(configPath);
  const log = createLogger({ name: 'hostnet-controller', level: config.logLevel });
  // A bug that escapes every handler is logged and counted; the controller keeps serving its agents.
  const guard = (kind: string) => (err: unknown): void => { log.error({ err, kind }, 'uncaught error; serving on'); };
  process.on('uncaughtException', guard('uncaughtException'));
  process.on('unhandledRejection', guard('unhandledRejection'));
  if (!config.tokensFile) throw new ConfigError('tokensFile', 'is required: the admin API needs bearer tokens');
  const tokens = Tokens.parse(await readFile(config.tokensFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError('tokensFile', `cannot read ${config.tokensFile}: ${err.code ?? 'error'}`);
  }), config.tokensFile);
  const engines = await openEngines(config, log);
  const { store } = engines;
  const loadedAt = performance.now();
  const ca = config.ca ? await AgentsCa.load(config.ca.certFile, config.ca.keyFile).catch((err: Error) => {
    throw new ConfigError('ca', err.message);
  }) : undefined;
  const identity: IdentityOptions | undefined = ca && config.ca
    ? { ca, certificateLifetimeMs: config.ca.certificateLifetimeMs, tokenLifetimeMs: config.ca.enrollmentTokenLifetimeMs } : undefined;
  const server = grpcServer(config);
  const agentServer = config.grpc.agentListen ? grpcServer(config) : undefined;
  store.watch(store.revision(), (b) => log.info({ revision: b.revision, changes: b.changes.length, relist: b.relist || undefined }, 'store changed'));
  // The first compile pass runs in chunks once serving (below): a restarted replica answers at once,
  // and accepts its agents' streams before their hosts are compiled (each gets its state as the pass reaches it).
  const agents = await Agents.open({
    store, status: engines.status, replica: config.replica, log, heartbeatSeconds: Math.round(config.agents.heartbeatMs / 1000),
    compile: { managementPrefixes: config.managementPrefixes, ...(config.publicPool ? { publicPool: config.publicPool } : {}) },
    // An agent is the host its certificate names, while its host's credential lists that certificate.
    ...(identity ? {
      identity: { peer: peerOf, accepted: (p) => checkAccepted(store, p) },
      renew: (p, csr) => renew(store, identity, p, csr),
    } : {}),
  }, { chunk: 500, deferFirstPass: true });
  log.info({ storeMs: Math.round(loadedAt - bootAt), revision: store.revision() }, 'intent loaded');
  const limits = { maxRequestBytes: config.grpc.maxMessageBytes };
  addService(server, AdminService, adminService({
    store, tokens, hosts: { publicPool: config.publicPool }, rollout: () => agents.rollout(), ...(identity ? { identity } : {}),
  }), log, limits);
  const port = await bind(server, config.grpc.listen, await adminCredentials(config));
  // The operators' API before the agents' listener: after a restart 10,000 agents' TLS handshakes arrive at once,
  // and the dashboard and /healthz answer while they are served.
  const http = httpServer({
    agents, tokens, log, revision: () => store.revision(), live: () => store.live(), counters: engines.counters, replica: config.replica,
    heartbeatSeconds: Math.round(config.agents.heartbeatMs / 1000), store,
  });
  const [httpHost, httpPort] = splitHostPort(config.http.listen);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(httpPort, httpHost, () => resolve());
  });
  log.info({ listen: config.http.listen }, 'dashboard API serving');
  let agentListener: AgentListener | undefined;
  if (agentServer && config.grpc.agentListen && ca) {
    addService(agentServer, AgentService, agents.service(), log, limits);
    addService(agentServer, EnrollService, enrollService(store, identity, log), log, limits);
    agentListener = await listenAgents(agentServer, config.grpc.agentListen, await agentTls(config, ca), {
      onError: (err) => log.warn({ err }, 'the agent listener could not accept a connection'),
    });
    log.info({ listen: config.grpc.agentListen, port: agentListener.port, ca: ca.fingerprint }, 'agents served with mutual TLS (and enrollment)');
  } else {
    log.warn('no grpc.agentListen: this replica serves no agents');
  }
  log.info({ listen: config.grpc.listen, port, revision: store.revision(), tls: Boolean(config.grpc.certFile), engine: config.store.engine, replica: config.replica, startupMs: Math.round(performance.now() - bootAt) }, 'controller serving');
  if (!config.grpc.certFile) log.warn('the admin listener without TLS: configure grpc.certFile/keyFile for production');
  agents.startFirstPass();
  void agents.compiled.then(() => log.info({ compileMs: Math.round(agents.lastPass.ms), hosts: agents.lastPass.hosts, sinceStartMs: Math.round(performance.now() - bootAt) },
    'every host compiled'));
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('shutting down');
  const started = Date.now();
  // Agents' streams are ended first (UNAVAILABLE: they reconnect elsewhere); then running calls get 3 s.
  await agentListener?.close();
  agents.endStreams();
  await Promise.all([stop(server, 3000), ...(agentServer ? [stop(agentServer, 3000)] : [])]);
  http.closeAllConnections();
  await new Promise<void>((resolve) => http.close(() => resolve()));
  await agents.close();
  await engines.close();
  log.info({ ms: Date.now() - started }, 'stopped: rollout written, store closed');
  return 0;
}

const cli: Cli = {
  name: 'hostnet-controller',
  version: VERSION,
  summary: 'stores network intent, pushes it to the agents, tracks rollout and health',
  commands: [
    {
      name: 'check-config',
      summary: 'validate a controller config file and print it as compiled',
      usage: '--config FILE',
      options: { config: { type: 'string' } },
      async run(values) {
        const config = await loadControllerConfig(requireString(values, 'config'));
        process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
        return 0;
      },
    },
    {
      name: 'ca',
      summary: 'ca init --dir DIR [--server-name NAME]...: create an agents CA (and a server certificate it signs for these names)',
      usage: 'init --dir DIR [--server-name NAME]...',
      options: { dir: { type: 'string' }, 'server-name': { type: 'string', multiple: true } },
      async run(values, positionals) {
        if (positionals[0] !== 'init') throw new ConfigError('ca', 'the only subcommand is: ca init --dir DIR [--server-name NAME]...');
        const names = (values['server-name'] as string[] | undefined) ?? [];
        const r = await initCa(requireString(values, 'dir'), names);
        process.stdout.write(`${r.files.join('\n')}\nCA SHA-256 fingerprint: ${r.fingerprint}\n`);
        return 0;
      },
    },
    {
      name: 'run',
      summary: 'serve the admin and agent gRPC APIs and the dashboard JSON API',
      usage: '--config FILE',
      options: { config: { type: 'string' } },
      run: (values) => runController(requireString(values, 'config')),
    },
  ],
};

// `hostnet-controller --config FILE` is `hostnet-controller run --config FILE`.
const argv = process.argv.slice(2);
process.exitCode = await runCli(cli, argv[0]?.startsWith('--config') ? ['run', ...argv] : argv);
