#!/usr/bin/env -S node --max-semi-space-size=2
// The young generation is capped at 2 MB semi-spaces: the agent allocates in
// bursts (a policy, a render) and otherwise idles, and the default 16 MB
// semi-spaces alone would add some 30 MB of RSS on every host.
// hostnet-agent: the host daemon and its one-shot commands. Composition root:
// the only agent module that builds real adapters.
import { type Cli, type Command, notYet, requireString, runCli } from '../../common/cli.js';
import { createLogger } from '../../common/log.js';
import { run } from '../../common/run.js';
import { VERSION } from '../../common/version.js';
import { loadAgentConfig } from './config.js';
import { Firewall } from './firewall/firewall.js';
import { NftRejectedError, nftCli } from './firewall/nft-cli.js';
import { NetlinkError, openNftNetlink } from './firewall/nft-netlink.js';
import { readPolicyFile } from './firewall/policy-file.js';
import { PolicyError } from './firewall/policy.js';

/** The firewall with real adapters, for the one-shot commands. */
async function oneShotFirewall(configPath: string | undefined): Promise<Firewall> {
  const config = configPath ? await loadAgentConfig(configPath) : undefined;
  const log = createLogger({ name: 'hostnet-agent', level: config?.logLevel ?? 'warn' });
  return new Firewall({
    nft: nftCli(run), openNetlink: openNftNetlink, log, managementPrefixes: config?.managementPrefixes ?? [],
  });
}

/** Runs a firewall command, turning its expected failures into one line and an exit code. */
async function firewallCommand(fn: () => Promise<void>): Promise<number> {
  try {
    await fn();
    return 0;
  } catch (err) {
    if (err instanceof PolicyError) {
      process.stderr.write(`hostnet-agent: invalid policy: ${err.message}\n`);
      return 2;
    }
    if (err instanceof NftRejectedError || err instanceof NetlinkError) {
      process.stderr.write(`hostnet-agent: ${err.message}; the running ruleset is unchanged\n`);
      return 1;
    }
    throw err;
  }
}

const policyOptions = { policy: { type: 'string' }, config: { type: 'string' } } as const;

const firewallCommands: Command[] = [
  {
    name: 'firewall render',
    summary: 'print the nft ruleset a FirewallPolicy (proto JSON) compiles to',
    usage: '--policy FILE [--config AGENT_YAML]',
    options: policyOptions,
    run: (values) => firewallCommand(async () => {
      const policy = await readPolicyFile(requireString(values, 'policy'));
      const firewall = await oneShotFirewall(values.config as string | undefined);
      try {
        process.stdout.write(firewall.render(policy));
      } finally {
        firewall.close();
      }
    }),
  },
  {
    name: 'firewall apply',
    summary: 'apply a FirewallPolicy (proto JSON) in this network namespace, atomically',
    usage: '--policy FILE [--config AGENT_YAML]',
    options: policyOptions,
    run: (values) => firewallCommand(async () => {
      const policy = await readPolicyFile(requireString(values, 'policy'));
      const firewall = await oneShotFirewall(values.config as string | undefined);
      try {
        const r = await firewall.applyPolicy(policy);
        process.stdout.write(`applied firewall policy ${r.version || '(no version)'} in ${r.ms.toFixed(0)} ms\n`);
      } finally {
        firewall.close();
      }
    }),
  },
];

const ISSUE_ROUTING = 'issue #4, agent routing';
const ISSUE_DAEMON = 'issue #6, agent daemon';

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
    notYet('run', 'run the daemon: sync with the controller, apply, repair, report health', '--config FILE',
      { config: { type: 'string' } }, ISSUE_DAEMON),
    notYet('status', 'print this host\'s versions, checks and sessions', '', {}, ISSUE_DAEMON),
    ...firewallCommands,
    notYet('routing render', 'print the frr.conf a RoutingIntent renders to', '--intent FILE',
      { intent: { type: 'string' } }, ISSUE_ROUTING),
    notYet('routing apply', 'apply a RoutingIntent (loopbacks and FRR)', '--intent FILE',
      { intent: { type: 'string' } }, ISSUE_ROUTING),
  ],
};

process.exitCode = await runCli(cli, process.argv.slice(2));
