// stdout + stderr under one byte cap, enforced as the output arrives: past the cap nothing more
// is kept and `truncated` is set, so a flood costs the host at most the cap.
export class OutputCollector {
  readonly #chunks: { 1: Buffer[]; 2: Buffer[] } = { 1: [], 2: [] };
  #remaining: number;
  truncated = false;

  constructor(capBytes: number) {
    this.#remaining = capBytes;
  }

  /** Appends to stdout (1) or stderr (2); returns false once the cap is reached. */
  write(fd: 1 | 2, data: string | Buffer): boolean {
    if (this.#remaining <= 0) {
      if (data.length > 0) this.truncated = true;
      return false;
    }
    let buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (buf.length > this.#remaining) {
      buf = buf.subarray(0, this.#remaining);
      this.truncated = true;
    }
    this.#remaining -= buf.length;
    this.#chunks[fd].push(buf);
    return this.#remaining > 0;
  }

  get stdout(): string {
    return Buffer.concat(this.#chunks[1]).toString('utf8');
  }

  get stderr(): string {
    return Buffer.concat(this.#chunks[2]).toString('utf8');
  }
}
