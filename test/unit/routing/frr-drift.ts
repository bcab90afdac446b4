// A hand edit in words, from FRR's running configuration before and after:
// lines with the blocks they sit in, a block added or removed as a whole
// shown as its header, and from frr-reload's --test output.
import t from 'tap';
import { describeChange, describeDrift, putBackCommands, runningChange } from '../../../agent/src/routing/frr-drift.js';

const BEFORE = `!
frr defaults datacenter
log syslog informational
!
router bgp 65102
 bgp router-id 10.1.0.2
 !
 address-family ipv4 unicast
  network 10.1.0.2/32
  neighbor private route-map HOSTNET-OUT-private out
 exit-address-family
exit
!
route-map HOSTNET-OUT-private permit 10
 match as-path HOSTNET-LOCAL
exit
!`;

const AFTER = `!
frr defaults datacenter
log syslog informational
!
router bgp 65102
 bgp router-id 10.1.0.2
 !
 address-family ipv4 unicast
  neighbor private route-map HOSTNET-OUT-private out
  network 10.9.9.9/32
 exit-address-family
exit
!
route-map HOSTNET-OUT-private permit 5
exit
!
route-map HOSTNET-OUT-private permit 10
 match as-path HOSTNET-LOCAL
exit
!`;

const verbs = { added: 'added', removed: 'removed' };

void t.test('from the running configuration: lines in their blocks; a new block is its header', async (t) => {
  const c = runningChange(BEFORE, AFTER);
  t.equal(describeChange(c.added, c.removed, verbs),
    'added: "network 10.9.9.9/32" (in router bgp 65102 > address-family ipv4 unicast), "route-map HOSTNET-OUT-private permit 5"; '
    + 'removed: "network 10.1.0.2/32" (in router bgp 65102 > address-family ipv4 unicast)');
  t.same(runningChange(BEFORE, BEFORE), { added: [], removed: [] }, 'the same text: no change');
});

void t.test('from frr-reload --test: the leaves, "no" taken off, with their contexts', async (t) => {
  t.equal(describeDrift({ add: ['router bgp 65102', ' address-family ipv4 unicast', '  network 10.1.0.2/32'], remove: ['no route-map HOSTNET-OUT-private permit 5'] }),
    'added by hand and taken out again: "route-map HOSTNET-OUT-private permit 5"; removed by hand and put back: "network 10.1.0.2/32" (in router bgp 65102 > address-family ipv4 unicast)');
  t.equal(describeDrift({ add: [], remove: [] }), '');
});

void t.test('lines only removed are put back by vtysh commands in their blocks; a removed block, or lines added, are not', async (t) => {
  const removedOnly = runningChange(BEFORE, BEFORE.replace('  network 10.1.0.2/32\n', ''));
  t.same(putBackCommands(removedOnly, BEFORE), ['configure terminal', 'router bgp 65102', 'address-family ipv4 unicast', 'network 10.1.0.2/32', 'end'],
    'the removed network line, in router bgp and its address family');
  t.equal(putBackCommands(runningChange(BEFORE, AFTER), BEFORE), undefined, 'lines added as well: frr-reload undoes it');
  const withoutRouteMap = BEFORE.replace('route-map HOSTNET-OUT-private permit 10\n match as-path HOSTNET-LOCAL\nexit\n', '');
  const gone = runningChange(BEFORE, withoutRouteMap);
  t.same(gone.removed.map((l) => l.line), ['route-map HOSTNET-OUT-private permit 10'], 'a route-map removed whole shows as its header');
  t.equal(putBackCommands(gone, BEFORE), undefined, 'which one line cannot put back: frr-reload does');
  t.equal(putBackCommands({ added: [], removed: [] }, BEFORE), undefined, 'nothing removed: nothing to put back');
});
