// The netns lab harness used by integration tests, e2e tests and `npm run lab`.
export { CommandError, inNetns, run, sourcePath, waitFor, type RunOptions, type RunResult } from './exec.js';
export { DEFAULT_BASE_DIR, Lab, Netns, sweep, type LabOptions, type LabProcess, type ManagementNetwork, type SpawnOptions } from './lab.js';
export { Frr, type FrrOptions } from './frr.js';
export { bgpPeers, parseBgpSummary, waitEstablished, type PeerState } from './bgp.js';
export { fibRoute, waitForRoute, type FibRoute } from './fib.js';
export {
  echoServer, flowStream, freePort, listen, outageMeter, ping, probe, probeLoop, waitForProbe, type FlowStream, type Listener, type OutageMeter, type ProbeLoop,
  type ProbeResult, type Transport,
} from './probe.js';
export { torConfig, type TorConfig } from './tor.js';
export { notifySocket, type NotifyMessage, type NotifySocket } from './notify.js';
