import t from 'tap';
import { parseKernelRoutes, withSourceCommand } from '../../../agent/src/routing/fib.js';

// What `ip -j route show proto bgp` prints for an ECMP route over both uplinks, and for one path.
const ecmp6 = [{ dst: '2001:db8:b::1', metric: 20, flags: [], nexthops: [
  { gateway: 'fe80::1', dev: 'eth1', weight: 1, flags: [] }, { gateway: 'fe80::2', dev: 'eth0', weight: 1, flags: [] }] }];
const single4 = [{ dst: '10.2.0.1', gateway: '169.254.0.1', dev: 'eth0', metric: 20, prefsrc: '10.1.0.1', flags: ['onlink'] }];

void t.test('kernel routes: source, metric and every next hop', async (t) => {
  const [r6] = parseKernelRoutes(ecmp6, 6);
  t.match(r6, { prefix: '2001:db8:b::1/128', src: undefined, metric: 20, nexthops: [{ gateway: 'fe80::1', dev: 'eth1', weight: 1, onlink: false }, { gateway: 'fe80::2', dev: 'eth0' }] });
  const [r4] = parseKernelRoutes(single4, 4);
  t.match(r4, { prefix: '10.2.0.1/32', src: '10.1.0.1', nexthops: [{ gateway: '169.254.0.1', dev: 'eth0', onlink: true }] });
});

void t.test('giving a route its source replaces it with everything else as it was', async (t) => {
  const [r6] = parseKernelRoutes(ecmp6, 6);
  const [r4] = parseKernelRoutes(single4, 4);
  if (!r6 || !r4) throw new Error('parsed');
  t.same(withSourceCommand(r6, '2001:db8:a::1'), ['ip', '-6', 'route', 'replace', '2001:db8:b::1/128', 'proto', 'bgp', 'metric', '20', 'src', '2001:db8:a::1',
    'nexthop', 'via', 'fe80::1', 'dev', 'eth1', 'weight', '1', 'nexthop', 'via', 'fe80::2', 'dev', 'eth0', 'weight', '1']);
  t.same(withSourceCommand(r4, '10.1.0.1'), ['ip', '-4', 'route', 'replace', '10.2.0.1/32', 'proto', 'bgp', 'metric', '20', 'src', '10.1.0.1',
    'via', '169.254.0.1', 'dev', 'eth0', 'onlink']);
});
