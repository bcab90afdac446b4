// A run that crashed without teardown leaves namespaces, links, FRR daemons
// and files; the next sweep of its kind removes all of them, and leaves runs
// whose owner is alive alone.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_BASE_DIR, Lab, run, sweep } from '../../lab/index.js';

const CRASH = fileURLToPath(new URL('../../fixtures/crash-run.ts', import.meta.url));

async function traces(prefix: string): Promise<string[]> {
  const out: string[] = [];
  const ns = (await run(['ip', 'netns', 'list'])).stdout;
  out.push(...ns.split('\n').filter((l) => l.startsWith(prefix)).map((l) => `netns ${l}`));
  const procs = await run(['pgrep', '-af', join(DEFAULT_BASE_DIR, prefix)], { allowFail: true });
  out.push(...procs.stdout.split('\n').filter(Boolean).map((l) => `process ${l}`));
  if (await stat(join(DEFAULT_BASE_DIR, prefix)).then(() => true, () => false)) out.push('run directory');
  return out;
}

void t.test('sweep removes what a killed run left behind', async (t) => {
  // Kind "c" keeps this test's sweep away from other tests' runs.
  const child = spawn(process.execPath, ['--import=tsx', CRASH, 'c'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGKILL'); return sweep({ kind: 'c' }); });
  const prefix = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`crash-run exited early (${code})`)));
  });
  t.match(prefix, /^hnc[0-9a-f]{4}$/, 'the crashed run had a prefixed name');

  t.same(await sweep({ kind: 'c' }), [], 'a run whose owner is alive is not swept');
  t.ok((await traces(prefix)).length > 0, 'its namespaces, daemons and files exist while it runs');

  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  t.ok((await traces(prefix)).some((l) => l.startsWith('process')), 'FRR outlives its killed owner');

  t.same(await sweep({ kind: 'c' }), [prefix], 'the next sweep removes the dead run');
  t.same(await traces(prefix), [], 'no namespace, process or directory of the dead run remains');
});

void t.test('a run of another kind is never swept', async (t) => {
  const lab = await Lab.create({ kind: 'd' });
  t.teardown(() => lab.teardown());
  await lab.netns('x');
  t.same(await sweep({ kind: 'c' }), [], 'sweeping kind c leaves kind d alone');
  t.match((await run(['ip', 'netns', 'list'])).stdout, `${lab.prefix}-x`, 'the other run\'s namespace is still there');
});
