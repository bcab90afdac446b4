#!/usr/bin/env node
// hostnet-agent: the host daemon and its one-shot commands. Composition root:
// the only agent module that builds real adapters.
import { type Cli, notYet, requireString, runCli } from '../../common/cli.js';
import { VERSION } from '../../common/version.js';
import { loadAgentConfig } from './config.js';

const ISSUE_FIREWALL = 'issue #3, agent firewall';
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
    notYet('firewall render', 'print the nft ruleset a FirewallPolicy compiles to', '--policy FILE',
      { policy: { type: 'string' } }, ISSUE_FIREWALL),
    notYet('firewall apply', 'apply a FirewallPolicy in this network namespace', '--policy FILE',
      { policy: { type: 'string' } }, ISSUE_FIREWALL),
    notYet('routing render', 'print the frr.conf a RoutingIntent renders to', '--intent FILE',
      { intent: { type: 'string' } }, ISSUE_ROUTING),
    notYet('routing apply', 'apply a RoutingIntent (loopbacks and FRR)', '--intent FILE',
      { intent: { type: 'string' } }, ISSUE_ROUTING),
  ],
};

process.exitCode = await runCli(cli, process.argv.slice(2));
