// Pure parts of the lab harness: ToR config rendering and BGP summary parsing.
import t from 'tap';
import { parseBgpSummary, torConfig } from '../../lab/index.js';

void t.test('torConfig renders sessions and networks', async (t) => {
  const text = torConfig({
    hostname: 'tor1', asn: 65001, routerId: '10.255.0.1', ports: ['swp1', 'swp2'], networks: ['10.255.0.1/32'],
  });
  t.match(text, /^frr defaults datacenter\n/);
  t.match(text, /router bgp 65001\n bgp router-id 10\.255\.0\.1\n/);
  t.match(text, / neighbor swp1 interface remote-as external\n/);
  t.notMatch(text, /prefix-list|route-map/, 'no filters: a lab router accepts what its peers send');
  t.match(text, / {2}network 10\.255\.0\.1\/32\n/);
});

void t.test('parseBgpSummary reads FRR 8.4 output keyed by interface', async (t) => {
  const peers = parseBgpSummary({
    ipv4Unicast: {
      routerId: '10.255.0.1', as: 65001,
      peers: {
        swp1: { remoteAs: 65101, state: 'Established', pfxRcd: 1, connectionsEstablished: 1, connectionsDropped: 0, idType: 'interface' },
        swp2: { remoteAs: 0, state: 'Active', connectionsEstablished: 0, connectionsDropped: 2 },
      },
    },
  });
  t.equal(peers.get('swp1')?.state, 'Established');
  t.equal(peers.get('swp1')?.remoteAs, 65101);
  t.equal(peers.get('swp2')?.connectionsDropped, 2);
  t.equal(parseBgpSummary({}).size, 0, 'no BGP instance: no peers');
});
