// FRR's JSON read into typed values: FRR 8.4 as captured on this machine,
// the "vrf all" wrapper, and the fields FRR 10.x adds or renames.
import t from 'tap';
import { parseAdvertised, parseNeighbors, parseSummary } from '../../../agent/src/routing/bgp-state.js';
import { parseReloadTest } from '../../../agent/src/routing/frr-apply.js';

// `show bgp summary json` from FRR 8.4.4 here (a ToR with one unnumbered peer), trimmed.
const FRR84 = {
  ipv4Unicast: {
    routerId: '10.255.0.1', as: 65001, vrfId: 0, vrfName: 'default', peerCount: 1,
    peers: {
      swp1: {
        remoteAs: 65101, localAs: 65001, version: 4, msgRcvd: 9, msgSent: 10, tableVersion: 0, outq: 0, inq: 0,
        peerUptime: '00:00:05', peerUptimeMsec: 5000, pfxRcd: 1, pfxSnt: 2, state: 'Established', peerState: 'OK',
        connectionsEstablished: 1, connectionsDropped: 0, idType: 'interface',
      },
    },
  },
};

void t.test('FRR 8.4 summary, with and without the vrf level', async (t) => {
  const direct = parseSummary(FRR84);
  t.same(direct.map((s) => [s.vrf, s.peer, s.state, s.remoteAs, s.prefixesReceived, s.prefixesSent, s.connectionsEstablished, s.uptimeMs]),
    [['default', 'swp1', 'Established', 65101, 1, 2, 1, 5000]]);
  const all = parseSummary({ default: FRR84 });
  t.same(all.map((s) => [s.vrf, s.peer, s.state]), [['default', 'swp1', 'Established']]);
  t.same(parseSummary({}), [], 'no BGP instance');
  t.same(parseSummary({ default: {} }), [], 'a VRF without sessions');
});

void t.test('FRR 10.x fields: ipv6 family, extra keys, missing counters', async (t) => {
  const v10 = {
    default: {
      ipv6Unicast: {
        routerId: '10.1.0.10', as: 65101,
        peers: {
          eth0: { hostname: 'tor1', softwareVersion: 'FRRouting/10.3', remoteAs: 65001, state: 'Established', peerState: 'OK', pfxRcd: 3, pfxSnt: 1, peerUptimeMsec: 12, idType: 'interface' },
          eth1: { remoteAs: 65002, state: 'Idle (Admin)' },
        },
      },
    },
  };
  const s = parseSummary(v10);
  t.same(s.map((x) => [x.peer, x.state, x.connectionsDropped]), [['eth0', 'Established', 0], ['eth1', 'Idle (Admin)', 0]]);
});

void t.test('neighbors and advertised routes', async (t) => {
  const n = parseNeighbors({
    eth0: { remoteAs: 65001, bgpNeighborAddr: 'fe80::1', hostname: 'tor1', bgpState: 'Established' },
    swp1: { remoteAs: 65101, state: 'Active' },
  });
  t.same(n.map((x) => [x.peer, x.state, x.address, x.interface]), [['eth0', 'Established', 'fe80::1', 'eth0'], ['swp1', 'Active', '', 'swp1']]);
  t.same(parseAdvertised({ advertisedRoutes: { '10.1.0.10/32': {}, '10.0.0.0/8': {} }, totalPrefixCounter: 2 }), ['10.0.0.0/8', '10.1.0.10/32']);
  t.same(parseAdvertised({}), []);
});

void t.test('frr-reload --test output', async (t) => {
  const out = '\nLines To Delete\n===============\nno hostname vm\nrouter bgp 65101\n address-family ipv4 unicast\n  network 10.99.0.0/24\n\nLines To Add\n============\nhostname host-a\nip prefix-list X seq 5 permit 10.0.0.0/8\n';
  t.same(parseReloadTest(out), {
    remove: ['router bgp 65101', ' address-family ipv4 unicast', '  network 10.99.0.0/24'],
    add: ['ip prefix-list X seq 5 permit 10.0.0.0/8'],
  }, 'hostname lines are FRR\'s own and ignored');
  t.same(parseReloadTest('2026 INFO: Loading\n'), { add: [], remove: [] });
  t.same(parseReloadTest('Lines To Delete\n===============\nno ip forwarding\n\nLines To Add\n============\nno ipv6 forwarding\n'), { add: [], remove: [] },
    'forwarding lines are the host\'s and ignored');
});
