// Content-addressed blob storage (sha256). Paths are built from the hex digest only, never from
// user input.
export interface BlobRef {
  sha256: string;
  size: number;
}

export interface BlobStore {
  /** Stores the bytes durably (on return they survive a crash) and returns their address. */
  put(data: Uint8Array): Promise<BlobRef>;
  get(sha256: string): Promise<Buffer | null>;
  has(sha256: string): Promise<boolean>;
  delete(sha256: string): Promise<void>;
}

const SHA256_HEX = /^[a-f0-9]{64}$/;

export function assertDigest(sha256: string): void {
  if (!SHA256_HEX.test(sha256)) throw new Error('blob address must be a sha256 hex digest');
}
