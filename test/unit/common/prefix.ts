import t from 'tap';
import {
  PrefixError, canonicalPrefix, contains, formatPrefix, isCanonical, networkOf, parseAddress, parsePrefix,
} from '../../../common/prefix.js';

void t.test('canonical forms', async (t) => {
  const cases: [string, string][] = [
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['10.1.2.3', '10.1.2.3/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:DB8::1/32', '2001:db8::/32'],
    ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'],
    ['2001:0:0:1:0:0:0:1/128', '2001:0:0:1::1/128'],
    ['::/0', '::/0'],
    ['::1', '::1/128'],
    ['fe80::1:2/64', 'fe80::/64'],
    ['::ffff:10.0.0.1/128', '::ffff:a00:1/128'],
  ];
  for (const [input, want] of cases) t.equal(canonicalPrefix(input), want, input);
  t.ok(isCanonical('10.0.0.0/8'));
  t.notOk(isCanonical('10.0.0.1/8'), 'host bits set is not canonical');
  t.notOk(isCanonical('10.0.0.0'), 'a missing length is not canonical');
  t.notOk(isCanonical('2001:DB8::/32'), 'upper-case hex is not canonical');
});

void t.test('malformed input throws PrefixError', async (t) => {
  for (const bad of ['', '10.0.0.0/33', '10.0.0/8', '256.0.0.0/8', '10.0.0.0/-1', '10.0.0.0/ 8', '2001:db8::/129',
    'fe80::1%eth0/64', 'example.com/24', '10.0.0.0/8/8', '1.2.3.4/08x']) {
    t.throws(() => parsePrefix(bad), PrefixError, JSON.stringify(bad));
  }
});

void t.test('contains and networkOf', async (t) => {
  t.ok(contains(parsePrefix('10.0.0.0/8'), parsePrefix('10.20.0.5/32')));
  t.notOk(contains(parsePrefix('10.0.0.0/8'), parsePrefix('11.0.0.0/32')));
  t.notOk(contains(parsePrefix('10.0.0.0/16'), parsePrefix('10.0.0.0/8')), 'a shorter prefix is not inside');
  t.notOk(contains(parsePrefix('::/0'), parsePrefix('10.0.0.0/8')), 'families never contain each other');
  t.equal(formatPrefix(networkOf(parsePrefix('192.168.77.200/26'))), '192.168.77.192/26');
});

void t.test('random addresses round-trip through format and parse', async (t) => {
  let seed = 42;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  for (let i = 0; i < 500; i++) {
    const v6 = rnd(2) === 1;
    const groups = v6
      ? Array.from({ length: 8 }, () => (rnd(3) === 0 ? '0' : rnd(65536).toString(16))).join(':')
      : Array.from({ length: 4 }, () => String(rnd(256))).join('.');
    const len = rnd(v6 ? 129 : 33);
    const canon = canonicalPrefix(`${groups}/${len}`);
    t.equal(canonicalPrefix(canon), canon, 'canonical is a fixed point');
    const a = parsePrefix(canon);
    t.equal(a.len, len);
    t.equal(parseAddress(canon.split('/')[0] ?? '').family, v6 ? 6 : 4);
  }
});
