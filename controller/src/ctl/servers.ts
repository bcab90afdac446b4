// Which controller replicas hostnetctl talks to. Pure.
import { type OptionValues, UsageError } from '../../../common/cli.js';
import { HOST_PORT } from '../../../common/names.js';

/** The controller replicas to try, in order: every --server (each may list several, comma-separated), else HOSTNET_SERVER. */
export function serversOf(values: OptionValues, env: string | undefined): string[] {
  const given = Array.isArray(values.server) ? values.server : typeof values.server === 'string' ? [values.server] : [env ?? '127.0.0.1:7443'];
  const servers = given.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  for (const s of servers) if (!HOST_PORT.test(s) && !s.startsWith('unix:')) throw new UsageError(`--server "${s}" is not host:port`);
  if (servers.length === 0) throw new UsageError('--server needs an address (host:port)');
  return servers;
}
