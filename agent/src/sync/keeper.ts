// The agent's certificate over its life: obtained (loaded, or by enrollment
// at first start; each failure an event, retried), the Sync stream started
// once there is one, renewed over the stream before it expires (the stream
// then moves to the new one), a failed renewal retried well before expiry.
// Shared by the host agent and the ToR agent.
import type { ChannelCredentials } from '@grpc/grpc-js';
import type { AgentCertificate } from '../../../proto/gen/hostnet/v1/identity_pb.js';
import type { SyncClient } from './client.js';

/** What the agent needs of its identity (AgentIdentity). */
export interface Identity {
  credentials(): ChannelCredentials;
  readonly serial: string;
  readonly notAfter: Date;
  /** When a renewal is due (ms since the epoch). */
  renewAt(): number;
  renew(call: (csrPem: string) => Promise<AgentCertificate | undefined>): Promise<void>;
}

/** Between attempts to get a certificate, and between failed renewals (at most). */
const IDENTITY_RETRY_MS = 30_000;

export interface KeeperDeps {
  /** Loads or obtains the certificate; throws saying why it cannot. */
  readonly obtain: () => Promise<Identity>;
  readonly sync: SyncClient;
  readonly event: (e: { kind: string; detail: string; time: Date }) => void;
}

export class IdentityKeeper {
  identity: Identity | undefined;
  renewals = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly d: KeeperDeps) {}

  /** The current certificate's TLS credentials (the Sync client asks at every connect). */
  credentials(): ChannelCredentials {
    if (!this.identity) throw new Error('no identity yet');
    return this.identity.credentials();
  }

  /** Gets the certificate (retrying), then starts the stream and the renewals. */
  async start(): Promise<void> {
    while (!this.stopped) {
      try {
        this.identity = await this.d.obtain();
        break;
      } catch (err) {
        this.d.event({ kind: 'identity-failed', detail: `no client certificate: ${(err as Error).message}`, time: new Date() });
        await new Promise<void>((resolve) => { this.timer = setTimeout(resolve, IDENTITY_RETRY_MS); });
      }
    }
    if (this.stopped) return;
    this.d.sync.start();
    this.schedule();
  }

  private schedule(delayMs?: number): void {
    const id = this.identity;
    if (!id || this.stopped) return;
    const delay = delayMs ?? Math.max(0, id.renewAt() - Date.now());
    this.timer = setTimeout(() => void this.renewNow(id), Math.min(delay, 2 ** 31 - 1));
  }

  private async renewNow(id: Identity): Promise<void> {
    try {
      await id.renew((csr) => this.d.sync.renew(csr));
      this.renewals++;
      this.d.sync.resync();
      this.schedule();
    } catch (err) {
      const left = id.notAfter.getTime() - Date.now();
      this.d.event({ kind: 'certificate-renewal-failed', detail: `${(err as Error).message}; the certificate expires in ${Math.round(left / 1000)} s`, time: new Date() });
      this.schedule(Math.max(1000, Math.min(IDENTITY_RETRY_MS, left / 10)));
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
