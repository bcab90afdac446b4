// The controller's HTTP side against everything a client can send: a corpus
// of known killers (malformed %-escapes, targets no URL parser accepts), then
// random and malformed request lines, paths, escapes and headers over raw
// TCP. The real controller process answers every one with an HTTP status and
// still serves /healthz afterwards; its /metrics pass Prometheus' own linter;
// a 405 says what is allowed.
import t from 'tap';
import { connect } from 'node:net';
import { run } from '../../../common/run.js';
import { OPERATOR_TOKEN, startController } from '../../fixtures/controller-process.js';

const SEED = Number(process.env.HOSTNET_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** Sends raw bytes, returns the status line of the answer ('' when the connection closed without one). */
function raw(port: number, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    const done = (): void => { socket.destroy(); resolve(got.split('\r\n')[0] ?? ''); };
    socket.setTimeout(3000, done);
    socket.on('data', (d) => { got += d.toString('latin1'); if (got.includes('\r\n')) done(); });
    socket.on('error', done);
    socket.on('close', done);
    socket.write(bytes);
  });
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

void t.test('the HTTP side answers every request and stays up', async (t) => {
  const c = await startController(t);
  const port = c.httpPort;
  const request = (target: string, method = 'GET', headers = `host: x\r\nauthorization: Bearer ${OPERATOR_TOKEN}\r\n`): string =>
    `${method} ${target} HTTP/1.1\r\n${headers}connection: close\r\n\r\n`;

  const corpus: [string, Buffer | string, RegExp][] = [
    ['a malformed %-escape in a host id', request('/api/v1/hosts/%ZZ'), /^HTTP\/1\.1 400 /],
    ['a truncated %-escape', request('/api/v1/hosts/%E0%A4%A'), /^HTTP\/1\.1 400 /],
    ['a lone %', request('/%'), /^HTTP\/1\.1 400 /],
    ['a target no URL parser accepts', request('http://['), /^HTTP\/1\.1 400 /],
    ['an absolute URL to elsewhere', request('http://example.invalid/healthz'), /^HTTP\/1\.1 200 /],
    ['the asterisk form', request('*', 'OPTIONS'), /^HTTP\/1\.1 405 /],
    ['dot segments', request('/api/v1/../../healthz'), /^HTTP\/1\.1 200 /],
    ['an encoded slash in a host id', request('/api/v1/hosts/..%2f..%2fhealthz'), /^HTTP\/1\.1 404 /],
    ['a NUL in the path', request('/api/v1/hosts/a%00b'), /^HTTP\/1\.1 404 /],
    ['a 100 KB path', request(`/api/v1/hosts/${'a'.repeat(100_000)}`), /^HTTP\/1\.1 4\d\d /],
    ['an unknown method', request('/healthz', 'BREW'), /^HTTP\/1\.1 (400|405) /],
    ['DELETE', request('/api/v1/hosts', 'DELETE'), /^HTTP\/1\.1 405 /],
    ['a header without a colon', 'GET /healthz HTTP/1.1\r\nhost x\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['a control character in a header', 'GET /healthz HTTP/1.1\r\nhost: a\u0001b\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['two content-lengths', 'POST /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab', /^HTTP\/1\.1 400 /],
    ['a 64 KB header', request('/healthz', 'GET', `host: x\r\nx-big: ${'b'.repeat(65_536)}\r\n`), /^HTTP\/1\.1 431 /],
    ['bad chunked encoding', 'POST /healthz HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', /^HTTP\/1\.1 (400|405) /],
    ['no HTTP version', 'GET /healthz\r\n\r\n', /^HTTP\/1\.1 (200|400) /],
    ['binary garbage', Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) % 256)), /^HTTP\/1\.1 400 /],
  ];
  for (const [what, bytes, want] of corpus) t.match(await raw(port, bytes), want, what);

  // Random request lines: paths from an alphabet heavy in %, escapes, unicode and control characters.
  const random = rng(SEED);
  const alphabet = ['/', '%', '%2', '%ZZ', '%e2%82', '%ff', '..', '?', '#', 'a', '\u00e9', '\u{1F600}', ';', ' ', '\t', '\u0000', '\u007f', 'api', 'v1', 'hosts', '[', ']', '@', ':'];
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'get', 'G\u0000T', ''];
  let answered = 0;
  const odd: string[] = [];
  for (let i = 0; i < 300; i++) {
    const path = Array.from({ length: 1 + Math.floor(random() * 12) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    const method = methods[Math.floor(random() * methods.length)] ?? 'GET';
    const version = random() < 0.9 ? 'HTTP/1.1' : ['HTTP/2.0', 'HTTP/1.x', ''][Math.floor(random() * 3)];
    const status = await raw(port, Buffer.from(`${method} /${path} ${version}\r\nhost: x\r\nconnection: close\r\n\r\n`, 'utf8'));
    if (/^HTTP\/1\.[01] \d{3} /.test(status)) answered++;
    else odd.push(`${method} /${path} ${version} -> ${JSON.stringify(status)}`);
  }
  t.same(odd, [], `every random request got a status line (${answered} of 300, seed ${SEED}; replay with HOSTNET_FUZZ_SEED)`);

  t.equal(c.child.exitCode, null, 'the controller is still running');
  const health = await c.get('/healthz');
  t.equal(health.status, 200, '/healthz still answers');
  const hosts = await c.get('/api/v1/hosts');
  t.equal(hosts.status, 200, 'and the API');

  const post = await fetch(`http://127.0.0.1:${port}/api/v1/hosts`, { method: 'POST', body: '{}' });
  t.equal(post.status, 405);
  t.equal(post.headers.get('allow'), 'GET, HEAD', 'a 405 says what is allowed');
  const head = await fetch(`http://127.0.0.1:${port}/healthz`, { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD works');

  const metrics = await c.get('/metrics');
  const lint = await run(['promtool', 'check', 'metrics'], { stdin: metrics.body, allowFail: true });
  t.equal(lint.code, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`.trim());
  t.match(metrics.body, /^hostnet_controller_agents_connected 0$/m);
});
