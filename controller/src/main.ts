#!/usr/bin/env node
// hostnet-controller: the POD's network controller. Composition root: the
// only controller module that builds real adapters.
import { type Cli, notYet, requireString, runCli } from '../../common/cli.js';
import { VERSION } from '../../common/version.js';
import { loadControllerConfig } from './config.js';

const ISSUE_CORE = 'issue #5, controller core';

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
    notYet('run', 'serve the agent and admin gRPC APIs and the dashboard', '--config FILE',
      { config: { type: 'string' } }, ISSUE_CORE),
  ],
};

process.exitCode = await runCli(cli, process.argv.slice(2));
