// Rendered frr.conf files match their goldens (regenerate with `npm run golden`).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { frrGoldenPath, intentNames, renderFrrGolden } from '../../fixtures/goldens.js';

void t.test('every fixture intent renders exactly as its golden file', async (t) => {
  const names = intentNames();
  t.ok(names.length >= 3);
  for (const name of names) t.equal(renderFrrGolden(name), readFileSync(frrGoldenPath(name), 'utf8'), `${name}.conf is up to date`);
});

void t.test('the invariants a reader checks by eye', async (t) => {
  const ecmp = renderFrrGolden('ecmp');
  t.match(ecmp, / neighbor eth0 interface peer-group private\n neighbor eth1 interface peer-group private\n/, 'unnumbered peers in one peer group');
  t.match(ecmp, /route-map HOSTNET-OUT-private permit 10\n match as-path HOSTNET-LOCAL\n match ip address prefix-list HOSTNET-OWN-private\nexit/,
    'out: only our /32 with an empty AS path');
  t.match(ecmp, /ip prefix-list HOSTNET-ACCEPT-private seq 5 permit 10\.0\.0\.0\/8 le 32/, 'in: only the accepted prefixes');
  t.match(ecmp, /route-map HOSTNET-SRC permit 10\n match tag 100\n set src 10\.1\.0\.10\n/, 'source address by tag');
  t.match(ecmp, /bgp bestpath as-path multipath-relax/, 'ECMP across ToRs in different ASes');
  const as = renderFrrGolden('active-standby');
  t.notMatch(as, /multipath-relax/, 'active-standby: one path');
  t.match(as, /neighbor eth1 route-map HOSTNET-OUT-private-STANDBY out/, 'the standby uplink gets its own out map');
  t.match(as, /set as-path prepend 65102 65102 65102/, 'which prepends');
  t.match(as, /set local-preference 50/, 'and routes from it are less preferred');
  const pub = renderFrrGolden('public');
  t.match(pub, /route-map HOSTNET-SRC permit 20\n match tag 200\n set src 198\.51\.100\.12\n/, 'public routes leave from vni1');
  t.match(pub, /neighbor eth2 interface peer-group public/);
});
