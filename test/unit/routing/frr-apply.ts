// FrrApplier over a scripted runner: argv exactly, no reload when nothing
// differs, the previous configuration restored when a reload fails.
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FrrApplier, FrrApplyError } from '../../../agent/src/routing/frr-apply.js';
import type { RunOptions, RunResult } from '../../../common/run.js';
import { type Teardown, tempDir } from '../../fixtures/temp.js';

const DIFF = '\nLines To Delete\n===============\n\nLines To Add\n============\nip prefix-list X seq 5 permit 10.0.0.0/8\n';
const NONE = '\nLines To Delete\n===============\nno hostname vm\n\nLines To Add\n============\n';

async function setup(t: Teardown, script: (argv: readonly string[], stdinFile: string) => RunResult, running = true) {
  const dir = await tempDir(t, 'hostnet-frr');
  // FRR counts as running when both vty sockets exist.
  if (running) for (const s of ['zebra.vty', 'bgpd.vty']) await writeFile(join(dir, s), '');
  const calls: string[] = [];
  const fake = async (argv: readonly string[], _o?: RunOptions): Promise<RunResult> => {
    const file = argv[argv.length - 1] ?? '';
    calls.push(argv[0] === 'vtysh' ? file : `${argv[2] ?? ''} ${(await readFile(file, 'utf8')).trim()}`);
    return script(argv, file);
  };
  return { dir, calls, applier: new FrrApplier(fake, { confDir: dir, runDir: dir, vtySocket: dir }) };
}

void t.test('argv, and nothing reloaded when nothing differs', async (t) => {
  let argv: readonly string[] = [];
  const { dir, calls, applier } = await setup(t, (a) => { argv = a; return { code: 0, stdout: NONE, stderr: '' }; });
  const d = await applier.apply('A\n');
  t.same(d, { add: [], remove: [] });
  t.same(argv.slice(0, 11), ['python3', '/usr/lib/frr/frr-reload.py', '--test', '--bindir', '/usr/bin', '--confdir', dir, '--rundir', dir, '--vty_socket', dir]);
  t.same(calls, ['--test A'], 'only a test, no reload');
  t.equal(await readFile(join(dir, 'frr.conf'), 'utf8'), 'A\n', 'frr.conf written for the next start');
});

void t.test('a failed reload restores the previous configuration and reports', async (t) => {
  const { dir, calls, applier } = await setup(t, (a, file) => {
    if (a[2] === '--test') return { code: 0, stdout: DIFF, stderr: '' };
    return file.endsWith('candidate') && calls.at(-1) === '--reload NEW'
      ? { code: 1, stdout: '', stderr: 'ERROR: "router bgp 1" we failed to apply\n' }
      : { code: 0, stdout: '', stderr: '' };
  });
  await writeFile(join(dir, 'frr.conf'), 'OLD\n');
  const err = await applier.apply('NEW\n', 'OLD\n').then(() => null, (e: unknown) => e);
  t.ok(err instanceof FrrApplyError);
  t.match((err as Error).message, /FRR did not take the configuration: ERROR: "router bgp 1" we failed to apply/);
  t.same(calls, ['--test NEW', '--reload NEW', '--test NEW', '--reload NEW', '--test NEW', '--reload OLD'], 'tested, tried twice, then the previous one re-applied');
  t.equal(await readFile(join(dir, 'frr.conf'), 'utf8'), 'OLD\n', 'frr.conf still the previous one');
});

void t.test('a reload that exits 1 but leaves FRR running the text (a neighbor\'s lines gone with it) is applied; one that needs a second pass gets it', async (t) => {
  let tests = 0;
  const { dir, calls, applier } = await setup(t, (a) => {
    if (a[2] === '--test') return { code: 0, stdout: tests++ === 0 ? DIFF : NONE, stderr: '' };
    if (a[0] === 'vtysh') return { code: 0, stdout: '', stderr: '' };
    return { code: 1, stdout: '', stderr: '"router bgp 65001 -- no" we failed to remove this command\n% Specify remote-as or peer-group commands first\n' };
  });
  t.same(await applier.apply('NEW\n', 'OLD\n'), { add: ['ip prefix-list X seq 5 permit 10.0.0.0/8'], remove: [] });
  t.same(calls.filter((c) => !c.startsWith('clear')), ['--test NEW', '--reload NEW', '--test NEW'], 'one pass: FRR runs the text');
  t.equal(await readFile(join(dir, 'frr.conf'), 'utf8'), 'NEW\n');
  let passes = 0;
  const second = await setup(t, (a) => {
    if (a[2] === '--test') return { code: 0, stdout: passes < 2 ? DIFF : NONE, stderr: '' };
    passes++;
    return { code: 0, stdout: '', stderr: '' };
  });
  await second.applier.apply('NEW\n', 'OLD\n');
  t.same(second.calls.filter((c) => !c.startsWith('clear')), ['--test NEW', '--reload NEW', '--test NEW', '--reload NEW', '--test NEW'], 'lines left by the first pass: a second one');
});

void t.test('FRR not running yet: the file is written for its start, nothing is run', async (t) => {
  const { dir, calls, applier } = await setup(t, () => ({ code: 1, stdout: '', stderr: 'no' }), false);
  const d = await applier.apply('frr defaults datacenter\n!\nrouter bgp 65101\n');
  t.same(calls, [], 'no frr-reload');
  t.same(d, { add: ['frr defaults datacenter', 'router bgp 65101'], remove: [] });
  t.equal(await readFile(join(dir, 'frr.conf'), 'utf8'), 'frr defaults datacenter\n!\nrouter bgp 65101\n');
});
