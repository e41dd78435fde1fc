import { lookup } from 'node:dns/promises';
import net from 'node:net';

/**
 * The address to bind for a configured host. A name binds its first IPv4
 * address (else its first address), as Go's net.Listen does for
 * distribution: `localhost:5000` is 127.0.0.1 whatever order /etc/hosts
 * lists. No host means every interface, IPv4 and IPv6.
 */
export async function bindAddress(host: string | undefined): Promise<string | undefined> {
  if (host === undefined || net.isIP(host.replace(/%.*$/, ''))) return host;
  const found = await lookup(host, { all: true });
  return (found.find((a) => a.family === 4) ?? found[0])?.address ?? host;
}
