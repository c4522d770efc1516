// The host strings a client accepts, as users type them: `host:port`,
// `host` alone (the default client port, 7001, as redis-cli assumes 6379),
// and IPv6 literals in brackets (`[::1]:7001`, `[::1]`). Every host is
// normalised to one `host:port` string, so the same node named twice is one
// connection, and the rest of the client only ever sees that form.

/** The port a host given without one is dialled on: a node's default
 * `--listen` port. */
export const defaultClientPort = 7001;

/** `host:port` for a host string, or null when it cannot name a node. A
 * bare IPv6 address (`::1`) is refused: without brackets its last group
 * cannot be told from a port. */
export function normalizeHost(input: unknown): string | null {
  if (typeof input !== 'string') return null;
  const h = input.trim();
  if (h.length === 0 || h.length > 300 || /[\s/@?#]/.test(h)) return null;
  let host: string;
  let portText: string | undefined;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 2) return null;
    host = h.slice(1, end);
    const rest = h.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return null;
    portText = rest === '' ? undefined : rest.slice(1);
    if (!/^[0-9a-fA-F:.]+$/.test(host) || !host.includes(':')) return null;
  } else {
    const parts = h.split(':');
    if (parts.length > 2) return null;
    host = parts[0]!;
    portText = parts[1];
    if (!/^[A-Za-z0-9.-]+$/.test(host)) return null;
  }
  let port = defaultClientPort;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) return null;
    port = Number(portText);
    if (port < 1 || port > 65535) return null;
  }
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The host and port to dial for a normalised host string. */
export function dialTarget(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(addr.slice(i + 1)) };
}
