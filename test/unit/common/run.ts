import t from 'tap';
import { CommandError, run } from '../../../common/run.js';

void t.test('output and exit code', async (t) => {
  const r = await run(['sh', '-c', 'read x; echo "out $x"; echo err >&2'], { stdin: 'in\n' });
  t.equal(r.code, 0);
  t.equal(r.stdout, 'out in\n');
  t.equal(r.stderr, 'err\n');
  await t.rejects(run(['sh', '-c', 'echo no >&2; exit 3']), CommandError, 'a non-zero exit throws');
  t.equal((await run(['sh', '-c', 'exit 3'], { allowFail: true })).code, 3, 'unless allowFail');
});

void t.test('a command that leaves a daemon holding its pipes is done when it exits (FRR\'s start script)', async (t) => {
  // The "daemon" sleeps far longer than the test may take; waiting for its pipes to close would hang.
  const started = run(['sh', '-c', 'sleep 600 & echo "$!"']);
  const settled = await Promise.race([
    started.then((r) => r),
    new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000).unref()),
  ]);
  if (settled === 'hung') {
    t.fail('run() still waits for the daemon\'s pipes');
    return;
  }
  const pid = Number(settled.stdout.trim());
  t.ok(pid > 0, 'the output before the exit is there');
  t.doesNotThrow(() => process.kill(pid, 0), 'and the daemon still runs');
  process.kill(pid, 'SIGKILL');
});

void t.test('the timeout kills a command that hangs', async (t) => {
  const r = await run(['sleep', '600'], { timeoutMs: 200, allowFail: true });
  t.equal(r.code, 128);
  t.match(r.stderr, /killed by SIGKILL/);
});
