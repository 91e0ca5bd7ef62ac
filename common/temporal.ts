import type { ConnectionOptions } from '@temporalio/client';
import type { TemporalConfig } from './config';

/** gRPC connection options for a local dev server, a self-hosted cluster (TLS, mTLS) or Temporal Cloud (API key). */
export function temporalConnectionOptions(config: TemporalConfig): ConnectionOptions & { apiKey?: string } {
  return {
    address: config.address,
    tls: config.tls
      ? {
          ...(config.tls.serverRootCa ? { serverRootCACertificate: config.tls.serverRootCa } : {}),
          ...(config.tls.clientCert ? { clientCertPair: config.tls.clientCert } : {}),
          ...(config.tls.serverName ? { serverNameOverride: config.tls.serverName } : {}),
        }
      : undefined,
    apiKey: config.apiKey ?? undefined,
  };
}

/** The Temporal UI page of one workflow execution, when the UI address is known. */
export function temporalUiLink(config: TemporalConfig, workflowId: string): string | null {
  if (!config.uiUrl) return null;
  return `${config.uiUrl}/namespaces/${encodeURIComponent(config.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
