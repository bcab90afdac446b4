#!/usr/bin/env -S node --max-semi-space-size=2
// The young generation is capped at 2 MB semi-spaces: the agent allocates in
// bursts (a policy, a render) and otherwise idles, and the default 16 MB
// semi-spaces alone would add some 30 MB of RSS on every host.
// hostnet-agent: the host daemon and its one-shot commands. Composition root:
// the only agent module that builds real adapters.
import { type Cli, type Command, UsageError, requireString, runCli, type OptionValues } from '../../common/cli.js';
import { createLogger } from '../../common/log.js';
import { run } from '../../common/run.js';
import { VERSION } from '../../common/version.js';
import { loadAgentConfig } from './config.js';
import { Agent } from './daemon/agent.js';
import { TorAgent } from './daemon/tor.js';
import { systemdNotifier } from './daemon/notify.js';
import { type StatusView, formatStatus } from './daemon/status-view.js';
import { Firewall } from './firewall/firewall.js';
import { NftRejectedError, nftCli } from './firewall/nft-cli.js';
import { NetlinkError, openNftNetlink } from './firewall/nft-netlink.js';
import { readPolicyFile } from './firewall/policy-file.js';
import { PolicyError } from './firewall/policy.js';
import { BgpReader } from './routing/bgp-state.js';
import { FrrApplier, FrrApplyError } from './routing/frr-apply.js';
import { IntentError } from './routing/intent.js';
import { readIntentFile } from './routing/intent-file.js';
import { Routing } from './routing/routing.js';
import { fibReader } from './routing/fib.js';
import { conntrackCli } from './firewall/conntrack.js';
import { frrProcesses } from './routing/frr-daemons.js';
import { openRtLinks } from './routing/rtnl.js';
import { AgentIdentity } from './sync/identity.js';

/** The firewall with real adapters, for the one-shot commands. */
async function oneShotFirewall(configPath: string | undefined): Promise<Firewall> {
  const config = configPath ? await loadAgentConfig(configPath) : undefined;
  const log = createLogger({ name: 'hostnet-agent', level: config?.logLevel ?? 'warn' });
  return new Firewall({
    nft: nftCli(run), openNetlink: openNftNetlink, log, managementPrefixes: config?.managementPrefixes ?? [],
  });
}

/** The routing service with real adapters; FRR's files under `frrDir` (conf, pid files and vty sockets). */
function oneShotRouting(values: OptionValues): Routing {
  const frrDir = typeof values['frr-dir'] === 'string' ? values['frr-dir'] : undefined;
  const kind = values['loopback-kind'] === 'bridge' ? 'bridge' : 'dummy';
  return new Routing({
    rt: openRtLinks(),
    frr: new FrrApplier(run, {
      confDir: frrDir ?? '/etc/frr', runDir: frrDir ?? '/var/run/frr', vtySocket: frrDir ?? '/var/run/frr',
    }),
    loopbackKind: kind,
  });
}

/**
 * Runs a one-shot command, turning its expected failures into one line on
 * stderr and an exit code: 2 for bad input, 1 for a refusal by the kernel or
 * FRR (which leaves things as they were).
 */
async function oneShot(fn: () => Promise<void>): Promise<number> {
  try {
    await fn();
    return 0;
  } catch (err) {
    if (err instanceof PolicyError) return fail(2, `invalid policy: ${err.message}`);
    if (err instanceof IntentError) return fail(2, `invalid routing intent: ${err.message}`);
    if (err instanceof NftRejectedError || err instanceof NetlinkError) return fail(1, `${err.message}; the running ruleset is unchanged`);
    if (err instanceof FrrApplyError) return fail(1, `${err.message}; FRR keeps its previous configuration`);
    throw err;
  }
}

function fail(code: number, message: string): number {
  process.stderr.write(`hostnet-agent: ${message}\n`);
  return code;
}

/** Runs `fn` with a service that is closed afterwards, whatever happens. */
async function using<T extends { close(): void }>(service: T, fn: (s: T) => Promise<void>): Promise<void> {
  try {
    await fn(service);
  } finally {
    service.close();
  }
}

const intentOptions = {
  intent: { type: 'string' }, 'frr-dir': { type: 'string' }, 'loopback-kind': { type: 'string' },
} as const;

const routingCommands: Command[] = [
  {
    name: 'routing render',
    summary: 'print the frr.conf a RoutingIntent (proto JSON) renders to',
    usage: '--intent FILE',
    options: intentOptions,
    run: (values) => oneShot(async () => {
      const intent = await readIntentFile(requireString(values, 'intent'));
      await using(oneShotRouting(values), async (routing) => { process.stdout.write(await routing.render(intent)); });
    }),
  },
  {
    name: 'routing apply',
    summary: 'apply a RoutingIntent: loopbacks over netlink, then FRR through frr-reload (no restart)',
    usage: '--intent FILE [--frr-dir DIR] [--loopback-kind dummy|bridge]',
    options: intentOptions,
    run: (values) => oneShot(async () => {
      if (values['loopback-kind'] !== undefined && values['loopback-kind'] !== 'dummy' && values['loopback-kind'] !== 'bridge') {
        throw new UsageError('--loopback-kind must be dummy or bridge');
      }
      const intent = await readIntentFile(requireString(values, 'intent'));
      await using(oneShotRouting(values), async (routing) => {
        const r = await routing.apply(intent);
        const frr = r.frr.add.length + r.frr.remove.length === 0 ? 'FRR unchanged' : `FRR: ${r.frr.remove.length} lines removed, ${r.frr.add.length} added`;
        const lo = [...r.loopbacks.created.map((x) => `created ${x}`), ...r.loopbacks.added.map((x) => `added ${x}`), ...r.loopbacks.removed.map((x) => `removed ${x}`)];
        process.stdout.write(`applied routing intent ${r.version || '(no version)'} in ${r.ms.toFixed(0)} ms; ${frr}; loopbacks ${lo.length ? lo.join(', ') : 'unchanged'}\n`);
      });
    }),
  },
];

const policyOptions = { policy: { type: 'string' }, config: { type: 'string' } } as const;

const firewallCommands: Command[] = [
  {
    name: 'firewall render',
    summary: 'print the nft ruleset a FirewallPolicy (proto JSON) compiles to',
    usage: '--policy FILE [--config AGENT_YAML]',
    options: policyOptions,
    run: (values) => oneShot(async () => {
      const policy = await readPolicyFile(requireString(values, 'policy'));
      await using(await oneShotFirewall(values.config as string | undefined), async (firewall) => { process.stdout.write(firewall.render(policy)); });
    }),
  },
  {
    name: 'firewall apply',
    summary: 'apply a FirewallPolicy (proto JSON) in this network namespace, atomically',
    usage: '--policy FILE [--config AGENT_YAML]',
    options: policyOptions,
    run: (values) => oneShot(async () => {
      const policy = await readPolicyFile(requireString(values, 'policy'));
      await using(await oneShotFirewall(values.config as string | undefined), async (firewall) => {
        const r = await firewall.applyPolicy(policy);
        process.stdout.write(`applied firewall policy ${r.version || '(no version)'} in ${r.ms.toFixed(0)} ms\n`);
      });
    }),
  },
];

/** Runs the daemon until SIGTERM/SIGINT; never flushes rules or withdraws routes on the way out. */
async function runDaemon(configPath: string): Promise<number> {
  const config = await loadAgentConfig(configPath);
  const log = createLogger({ name: 'hostnet-agent', level: config.logLevel });
  // The firewall and routing report events to the agent, which is built from them.
  const sink: { agent?: Agent } = {};
  const onEvent = (e: { kind: string; detail: string; time: Date }): void => sink.agent?.event(e);
  const firewall = new Firewall({
    nft: nftCli(run), openNetlink: openNftNetlink, log, managementPrefixes: config.managementPrefixes, onEvent, conntrack: conntrackCli(run),
  });
  const routing = new Routing({
    rt: openRtLinks(),
    frr: new FrrApplier(run, config.frr),
    loopbackKind: config.loopbackKind,
    processes: frrProcesses(config.frr.runDir, run),
    fib: fibReader(run, config.frr.vtySocket),
    daemonsFile: config.frr.daemons,
    commandLog: config.frr.commandLog,
    onEvent: (e) => {
      log.warn({ event: e.kind }, e.detail);
      onEvent(e);
    },
  });
  const agent = new Agent({
    config, version: VERSION, log, firewall, routing,
    bgp: new BgpReader(run, config.frr.vtySocket),
    notify: systemdNotifier((why) => log.error(why)),
    identity: () => AgentIdentity.open({
      files: config.controller, hostId: config.hostId, addresses: config.controller.addresses, log,
    }),
  });
  sink.agent = agent;
  await agent.start();
  log.info({ hostId: config.hostId, controllers: config.controller.addresses }, 'agent running');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('stopping; rules, loopbacks and FRR stay as they are');
  await agent.stop();
  return 0;
}

/** Runs the ToR mode until SIGTERM/SIGINT; FRR keeps its configuration on the way out. */
async function runTor(configPath: string): Promise<number> {
  const config = await loadAgentConfig(configPath);
  const log = createLogger({ name: 'hostnet-agent', level: config.logLevel });
  const tor = new TorAgent({
    config, version: VERSION, log, frr: new FrrApplier(run, config.frr), bgp: new BgpReader(run, config.frr.vtySocket),
    identity: () => AgentIdentity.open({ files: config.controller, hostId: config.hostId, addresses: config.controller.addresses, log }),
  });
  await tor.start();
  log.info({ switch: config.hostId, controllers: config.controller.addresses }, 'ToR agent running');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('stopping; FRR stays as it is');
  await tor.stop();
  return 0;
}

const DEFAULT_CONFIG = '/etc/hostnet/agent.yaml';

/** Reads the running daemon's /status and prints it. */
async function printStatus(values: OptionValues): Promise<number> {
  const configPath = typeof values.config === 'string' ? values.config : DEFAULT_CONFIG;
  const config = await loadAgentConfig(configPath);
  const url = `http://${config.metricsListen}/status`;
  let body: StatusView;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    body = await res.json() as StatusView;
  } catch (err) {
    return fail(1, `no agent answers at ${url} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}); is hostnet-agent running?`);
  }
  process.stdout.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : formatStatus(body));
  return body.status === 'ok' ? 0 : 4;
}

const cli: Cli = {
  name: 'hostnet-agent',
  version: VERSION,
  summary: 'keeps this host\'s firewall, loopbacks and BGP as the controller intends',
  commands: [
    {
      name: 'check-config',
      summary: 'validate an agent config file and print it as compiled',
      usage: '--config FILE',
      options: { config: { type: 'string' } },
      async run(values) {
        const config = await loadAgentConfig(requireString(values, 'config'));
        process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
        return 0;
      },
    },
    {
      name: 'run',
      summary: 'run the daemon: sync with the controller, apply, repair, report health',
      usage: '--config FILE',
      options: { config: { type: 'string' } },
      run: (values) => runDaemon(requireString(values, 'config')),
    },
    {
      name: 'tor',
      summary: 'run the ToR mode on an FRR-based switch: apply the controller\'s configuration of this switch (hostId: the switch\'s name), repair drift',
      usage: '--config FILE',
      options: { config: { type: 'string' } },
      run: (values) => runTor(requireString(values, 'config')),
    },
    {
      name: 'status',
      summary: 'print this host\'s versions, checks and sessions (exit 0 ok, 4 degraded or failed)',
      usage: `[--config FILE (default ${DEFAULT_CONFIG})] [--json]`,
      options: { config: { type: 'string' }, json: { type: 'boolean' } },
      run: printStatus,
    },
    ...firewallCommands,
    ...routingCommands,
  ],
};

process.exitCode = await runCli(cli, process.argv.slice(2));
