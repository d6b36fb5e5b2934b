// stdout + stderr under one byte cap, enforced as the output arrives: past the cap nothing more
// is kept and `truncated` is set, so a flood costs the host at most the cap. What is kept is
// also handed to an optional listener as it arrives (the run's event stream).

/** Told of the output a collector keeps, as it keeps it, and of the moment it is cut. */
export interface OutputListener {
  write(fd: 1 | 2, data: Buffer | string): void;
  truncated(): void;
}

export class OutputCollector {
  readonly #chunks: { 1: Buffer[]; 2: Buffer[] } = { 1: [], 2: [] };
  readonly #listener: OutputListener | undefined;
  #remaining: number;
  #truncated = false;

  constructor(capBytes: number, listener?: OutputListener) {
    this.#remaining = capBytes;
    this.#listener = listener;
  }

  get truncated(): boolean {
    return this.#truncated;
  }

  set truncated(value: boolean) {
    if (value && !this.#truncated) this.#listener?.truncated();
    this.#truncated = value;
  }

  /** Appends to stdout (1) or stderr (2); returns false once the cap is reached. */
  write(fd: 1 | 2, data: string | Buffer): boolean {
    if (this.#remaining <= 0) {
      if (data.length > 0) this.truncated = true;
      return false;
    }
    let buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const cut = buf.length > this.#remaining;
    if (cut) buf = buf.subarray(0, this.#remaining);
    this.#remaining -= buf.length;
    this.#chunks[fd].push(buf);
    if (buf.length > 0) this.#listener?.write(fd, buf);
    if (cut) this.truncated = true;
    return this.#remaining > 0;
  }

  get stdout(): string {
    return Buffer.concat(this.#chunks[1]).toString('utf8');
  }

  get stderr(): string {
    return Buffer.concat(this.#chunks[2]).toString('utf8');
  }
}
