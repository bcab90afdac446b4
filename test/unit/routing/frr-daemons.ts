// FRR's start options and processes, the pure parts: bgpd's listen port from
// its command line, the daemons file with our bgpd_options, and the cgroup
// directories a daemon the agent starts must join (so that stopping the
// agent does not stop it).
import t from 'tap';
import { bgpdOptions, cgroupDirs, listenPortOf, withBgpdOptions } from '../../../agent/src/routing/frr-daemons.js';

void t.test('the listen port of a bgpd command line', async (t) => {
  t.equal(listenPortOf(['/usr/lib/frr/bgpd', '-d', '-A', '127.0.0.1']), 179, 'none given: 179');
  t.equal(listenPortOf(['/usr/lib/frr/bgpd', '-p', '20179']), 20179);
  t.equal(listenPortOf(['/usr/lib/frr/bgpd', '-p20179']), 20179);
  t.equal(listenPortOf(['/usr/lib/frr/bgpd', '--bgp_port=0']), 0);
  t.equal(listenPortOf(['/usr/lib/frr/bgpd', '--bgp_port', '20179']), 20179);
});

void t.test('the daemons file keeps everything but bgpd\'s lines', async (t) => {
  const before = 'zebra=yes\nbgpd=no\nzebra_options="  -A 127.0.0.1 -s 90000000"\nbgpd_options="   -A 127.0.0.1"\n';
  t.equal(withBgpdOptions(before, bgpdOptions({ listenPort: 20179 })),
    'zebra=yes\nbgpd=yes\nzebra_options="  -A 127.0.0.1 -s 90000000"\nbgpd_options="-A 127.0.0.1 -p 20179"\n');
  t.equal(withBgpdOptions('', bgpdOptions({ listenPort: 179 })), 'bgpd=yes\nbgpd_options="-A 127.0.0.1 -p 179"\n', 'a missing file: just bgpd');
});

void t.test('the cgroup directories to join: the hierarchies systemd tracks processes with', async (t) => {
  const hybridMounts = [
    '30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate',
    '31 25 0:27 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd',
    '32 25 0:28 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu',
  ].join('\n');
  const hybrid = '9:name=systemd:/system.slice/frr.service\n1:cpu:/\n0::/system.slice/frr.service\n';
  t.same(cgroupDirs(hybrid, hybridMounts), ['/sys/fs/cgroup/systemd/system.slice/frr.service', '/sys/fs/cgroup/unified/system.slice/frr.service'], 'hybrid: both');
  const unified = '25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate';
  t.same(cgroupDirs('0::/system.slice/frr.service\n', unified), ['/sys/fs/cgroup/system.slice/frr.service'], 'cgroup v2');
  t.same(cgroupDirs('0::/\n', unified), [], 'the root: nothing to join');
  t.same(cgroupDirs('', unified), [], 'unknown: nothing');
});
