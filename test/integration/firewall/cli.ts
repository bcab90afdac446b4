// The one-shot commands, as a user runs them: render prints the golden text,
// apply programs the namespace it runs in, bad input is refused with the
// field named and the ruleset untouched.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../lab/index.js';
import { GOLDEN_MANAGEMENT, POLICY_DIR, goldenPath } from '../../fixtures/goldens.js';
import { tempDir } from '../../fixtures/temp.js';

const MAIN = fileURLToPath(new URL('../../../agent/src/main.ts', import.meta.url));
const agent = (...args: string[]): string[] => [process.execPath, '--import=tsx', MAIN, ...args];

void t.test('hostnet-agent firewall render / apply', async (t) => {
  const dir = await tempDir(t, 'hostnet-fwcli');
  const config = join(dir, 'agent.yaml');
  await writeFile(config, `hostId: host-b\ncontroller: { addresses: ["ctl:7443"] }\nmanagementPrefixes: [${GOLDEN_MANAGEMENT.map((p) => `"${p}"`).join(', ')}]\n`);
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const ns = await lab.netns('host');

  const render = await ns.exec(agent('firewall', 'render', '--policy', join(POLICY_DIR, 'hosts-v6.json'), '--config', config));
  t.equal(render.stdout, readFileSync(goldenPath('hosts-v6'), 'utf8'), 'render prints exactly the golden text');
  t.equal((await ns.exec(['nft', 'list', 'ruleset'])).stdout, '', 'render changes nothing');

  const apply = await ns.exec(agent('firewall', 'apply', '--policy', join(POLICY_DIR, 'hosts-v6.json'), '--config', config));
  t.match(apply.stdout, /^applied firewall policy hosts-v6-1 in \d+ ms\n$/);
  const ruleset = (await ns.exec(['nft', 'list', 'ruleset'])).stdout;
  t.match(ruleset, /comment "rule:ssh-admins"/, 'the policy is in force');

  const bad = join(dir, 'bad.json');
  const policy = JSON.parse(readFileSync(join(POLICY_DIR, 'hosts-v6.json'), 'utf8')) as { rules: { ports?: { first: number }[] }[] };
  (policy.rules[0] as { ports: { first: number }[] }).ports = [{ first: 0 }];
  await writeFile(bad, JSON.stringify(policy));
  const refused = await ns.exec(agent('firewall', 'apply', '--policy', bad), { allowFail: true });
  t.equal(refused.code, 2);
  t.match(refused.stderr, /invalid policy: rules\[0\]\.ports\[0\]\.first: port 0 is outside 1-65535/);
  await writeFile(bad, '{"version": "x", "rulez": []}');
  const unknown = await ns.exec(agent('firewall', 'apply', '--policy', bad), { allowFail: true });
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /bad\.json: rulez: unknown key \(one of version, hostId/);
  t.equal((await ns.exec(['nft', 'list', 'ruleset'])).stdout, ruleset, 'refused input changed nothing');
});
