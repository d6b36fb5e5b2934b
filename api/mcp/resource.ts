// This service as an OAuth protected resource (RFC 9728): its MCP endpoint's resource URL (the
// audience its tokens must carry), the metadata document and the WWW-Authenticate challenge.
// The URL comes from SANDGATE_PUBLIC_URL or the address the API listens on, never from a
// request's Host header: a token minted for another resource must not pass here by naming it.
import type { AddressInfo } from 'node:net';
import type { Config } from '../../contract/config.ts';

export const MCP_PATH = '/mcp';
export const METADATA_PATH = '/.well-known/oauth-protected-resource';

export interface McpResource {
  /** The service's base URL, e.g. http://127.0.0.1:8080. */
  base(): string;
  /** The MCP endpoint, the audience of its tokens. */
  url(): string;
  metadataUrl(): string;
  /** RFC 9728 section 2: what a client needs to know to get and send a token. */
  metadata(): Record<string, unknown>;
  /** The challenge of a 401 (RFC 6750 section 3, RFC 9728 section 5.1). */
  challenge(error?: { code: 'invalid_token'; description: string }): string;
}

export function mcpResource(config: Config, address: () => AddressInfo | string | null): McpResource {
  const base = () => {
    if (config.SANDGATE_PUBLIC_URL) return config.SANDGATE_PUBLIC_URL.replace(/\/+$/, '');
    const a = address();
    const port = a && typeof a === 'object' ? a.port : config.PORT;
    const unspecified = ['0.0.0.0', '::', ''].includes(config.HOST);
    const host = unspecified ? 'localhost' : config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
    return `http://${host}:${port}`;
  };
  const quoted = (s: string) => s.replace(/["\\]/g, "'");
  return {
    base,
    url: () => `${base()}${MCP_PATH}`,
    metadataUrl: () => `${base()}${METADATA_PATH}`,
    metadata: () => ({
      resource: `${base()}${MCP_PATH}`,
      // Sandgate issues its agents' tokens itself (an admin mints them with this resource).
      authorization_servers: [base()],
      bearer_methods_supported: ['header'],
      // Narrowing is structured (the token's profiles, tools and destinations), not scope strings.
      scopes_supported: ['agent'],
      resource_name: 'Sandgate',
      resource_documentation: `${base()}/docs`,
    }),
    challenge: (error) =>
      [
        'Bearer realm="sandgate"',
        ...(error ? [`error="${error.code}"`, `error_description="${quoted(error.description)}"`] : []),
        `resource_metadata="${base()}${METADATA_PATH}"`,
      ].join(', '),
  };
}
