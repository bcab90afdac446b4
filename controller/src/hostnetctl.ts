#!/usr/bin/env node
// hostnetctl: the operator CLI over AdminService.
import { type Cli, notYet, runCli } from '../../common/cli.js';
import { VERSION } from '../../common/version.js';

const ISSUE_CORE = 'issue #5, controller core';
const conn = { server: { type: 'string' }, token: { type: 'string' } } as const;

const cli: Cli = {
  name: 'hostnetctl',
  version: VERSION,
  summary: 'change and inspect hostnet intent through the controller\'s admin API',
  commands: [
    notYet('apply', 'create or update the resources in a YAML file', '-f FILE [--server ADDR] [--token TOKEN]',
      { ...conn, file: { type: 'string', short: 'f' } }, ISSUE_CORE),
    notYet('get', 'list resources of a kind, or show one', 'KIND [NAME] [-o json]',
      { ...conn, output: { type: 'string', short: 'o' } }, ISSUE_CORE),
    notYet('delete', 'delete one resource', 'KIND NAME', conn, ISSUE_CORE),
    notYet('rollout', 'per host: version sent, applied, NACK error', '', conn, ISSUE_CORE),
  ],
};

process.exitCode = await runCli(cli, process.argv.slice(2));
