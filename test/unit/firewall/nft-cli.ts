// The nft executor: argv and stdin exactly, errors traced to the policy.
import t from 'tap';
import { NftRejectedError, nftCli, parseNftError } from '../../../agent/src/firewall/nft-cli.js';
import type { RunOptions, RunResult } from '../../../common/run.js';

void t.test('parseNftError reads nft\'s location and message', async (t) => {
  const stderr = '/dev/stdin:3:1-40: Error: Could not process rule: No such file or directory\nadd rule inet hostnet acl ip saddr @o4_x accept\n^^^^^^\n';
  t.same(parseNftError(stderr), { line: 3, message: 'Could not process rule: No such file or directory' });
  t.same(parseNftError('Error: syntax error\n'), { line: 0, message: 'syntax error' });
});

void t.test('apply feeds the lines on stdin and names the origin of a rejected line', async (t) => {
  const calls: { argv: readonly string[]; stdin: string | undefined }[] = [];
  const fake = async (argv: readonly string[], o?: RunOptions): Promise<RunResult> => {
    calls.push({ argv, stdin: o?.stdin });
    return calls.length === 1
      ? { code: 0, stdout: '', stderr: '' }
      : { code: 1, stdout: '', stderr: '/dev/stdin:2:9-20: Error: Could not process rule: Invalid argument\n' };
  };
  const nft = nftCli(fake);
  const lines = [{ text: 'flush chain inet hostnet acl', origin: 'base' }, { text: 'add rule inet hostnet acl bogus', origin: 'rule web' }];
  await nft.apply(lines);
  t.same(calls[0], { argv: ['nft', '-f', '-'], stdin: 'flush chain inet hostnet acl\nadd rule inet hostnet acl bogus\n' });
  const err = await nft.check(lines).then(() => null, (e: unknown) => e);
  t.same(calls[1]?.argv, ['nft', '-c', '-f', '-']);
  t.ok(err instanceof NftRejectedError);
  t.match(err, { origin: 'rule web', line: 2, nftMessage: 'Could not process rule: Invalid argument' });
  t.match((err as Error).message, /^rule web: nft rejected the ruleset: Could not process rule/);
});
