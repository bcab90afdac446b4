// The three bins exist, print --help, and fail clearly on bad usage. Each is
// run as package.json's bin entry names it (the compiled file) when the tests
// run our programs compiled (HOSTNET_PROGRAMS=dist, as `npm test` does after
// its build), else from its TypeScript source; the entry must point at that
// source's compiled file.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Teardown, tempDir } from '../../fixtures/temp.js';

const root = new URL('../../../', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };

const sourceOf = (bin: string): string => (pkg.bin[bin] ?? '').replace(/^dist\//, '').replace(/\.js$/, '.ts');

function runBin(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = process.env.HOSTNET_PROGRAMS === 'dist' ? [join(root, pkg.bin[bin] ?? '')] : ['--import=tsx', join(root, sourceOf(bin))];
  return new Promise((resolve) => {
    execFile(process.execPath, [...program, ...args], { cwd: root }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** An agent.yaml with `text` in a fresh temporary directory; its path. */
async function agentConfigFile(t: Teardown, text: string): Promise<string> {
  const path = join(await tempDir(t, 'hostnet-cli'), 'agent.yaml');
  await writeFile(path, text);
  return path;
}

void t.test('every bin maps to a source file and prints --help', async (t) => {
  t.same(Object.keys(pkg.bin).sort(), ['hostnet-agent', 'hostnet-controller', 'hostnetctl']);
  for (const bin of Object.keys(pkg.bin)) {
    const source = sourceOf(bin);
    t.ok(existsSync(join(root, source)), `${bin} -> ${source} exists`);
    t.match(readFileSync(join(root, source), 'utf8'), /^#!\/usr\/bin\/env (-S )?node( --[a-z-]+=\d+)*\n/, `${bin} has a node shebang`);
    const r = await runBin(bin, ['--help']);
    t.equal(r.code, 0, `${bin} --help exits 0`);
    t.match(r.stdout, new RegExp(`Usage: ${bin} COMMAND`), `${bin} --help prints usage`);
  }
});

void t.test('usage errors exit 2 and say what is wrong', async (t) => {
  const unknown = await runBin('hostnet-agent', ['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command 'frobnicate'/);
  const missing = await runBin('hostnet-agent', ['check-config']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /--config is required/);
  const badFlag = await runBin('hostnet-agent', ['check-config', '--nope']);
  t.equal(badFlag.code, 2);
  t.match(badFlag.stderr, /Unknown option '--nope'/);
});

void t.test('hostnet-agent status without a running agent says so', async (t) => {
  // A port nobody listens on: the agent's /status is not there.
  const path = await agentConfigFile(t, 'hostId: h1\ncontroller: { addresses: ["c:7443"] }\nmetricsListen: "127.0.0.1:1"\n');
  const r = await runBin('hostnet-agent', ['status', '--config', path]);
  t.equal(r.code, 1);
  t.match(r.stderr, /no agent answers at http:\/\/127\.0\.0\.1:1\/status \(.*\); is hostnet-agent running\?/);
  const help = await runBin('hostnet-agent', ['firewall', 'render', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: hostnet-agent firewall render --policy FILE/);
});

void t.test('check-config names the bad field', async (t) => {
  const path = await agentConfigFile(t, 'hostId: h1\ncontroller: { addresses: ["c:7443"] }\nlogLevel: info\n');
  const bad = await runBin('hostnet-agent', ['check-config', '--config', path]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /config error: logLevel: unknown key/);
  await writeFile(path, 'hostId: h1\ncontroller: { addresses: ["c:7443"] }\n');
  const good = await runBin('hostnet-agent', ['check-config', '--config', path]);
  t.equal(good.code, 0);
  t.match(JSON.parse(good.stdout), { hostId: 'h1', stateDir: '/var/lib/hostnet' });
  const ctl = await runBin('hostnet-controller', ['check-config', '--config', join(dirname(path), 'nope.yaml')]);
  t.equal(ctl.code, 2);
  t.match(ctl.stderr, /cannot read config file/);
});
