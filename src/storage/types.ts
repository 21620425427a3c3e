/** Where a cluster's blob storage is, and how to get its credentials. */
export interface BlobEndpoint {
  kind: 'azurite' | 'azure';
  /** The cluster it belongs to (for hints in errors). */
  cluster: string;
  /** Base URL of the blob service, without credentials: safe to show. */
  url: string;
  /** The same service as the nodes reach it, where that differs from `url` (a swarm's head, published on its host). */
  nodeUrl?: string;
  /**
   * Path (root-only 0600, seen by every node) of a file holding a connection string for jobs:
   * a shared access signature, never the account key. Written by openBlobStore.
   */
  connectionStringFile: string;
  /** Loads the connection string (never log it). */
  connectionString(): Promise<string>;
}

export interface ContainerInfo {
  name: string;
  /** ISO 8601. */
  lastModified: string;
  etag: string;
  metadata: Record<string, string>;
}

export interface BlobInfo {
  name: string;
  size: number;
  /** ISO 8601. */
  lastModified: string;
  etag: string;
  contentType: string | undefined;
  metadata: Record<string, string>;
}
