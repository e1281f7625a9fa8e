/** Resource limits shared by every surface. All configurable; defaults are safe for a 2-core, 8 GB box. */
export interface ImageLimits {
  /** Refuse inputs whose header declares more pixels than this (checked before decoding pixels). */
  maxInputPixels: number;
  /** Refuse requests whose output would exceed this many pixels. */
  maxOutputPixels: number;
  /** Refuse encoded inputs larger than this many bytes. */
  maxInputBytes: number;
}

export const DEFAULT_LIMITS: ImageLimits = {
  maxInputPixels: 64 * 1024 * 1024, // 64 MP
  maxOutputPixels: 256 * 1024 * 1024, // 256 MP (e.g. 4096² ×4)
  maxInputBytes: 100 * 1024 * 1024, // 100 MB
};

/** How image URLs are fetched. */
export interface FetchPolicy {
  /** Allow loopback, private (RFC 1918, ULA), link-local and other non-public targets. Off by default (SSRF). */
  allowPrivateNetwork: boolean;
  /** Whole-request timeout in milliseconds. */
  timeoutMs: number;
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Redirects followed, each re-checked against the address policy. */
  maxRedirects: number;
}

export const DEFAULT_FETCH_POLICY: FetchPolicy = {
  allowPrivateNetwork: false,
  timeoutMs: 30_000,
  maxBytes: DEFAULT_LIMITS.maxInputBytes,
  maxRedirects: 5,
};
