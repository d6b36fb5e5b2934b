// Reads a sandbox container's attached output: Docker's multiplexed frames (8-byte header:
// stream, 3 zero bytes, big-endian length) → stdout/stderr under the profile's byte cap, and on
// stdout the entrypoint's trailer, found by the run's nonce even past the cap.
import { OutputCollector } from '../output-collector.ts';

export interface Trailer {
  exitCode: number;
  /** base64 of a tar of /work/out, when the program left files there. */
  outTarBase64: string | undefined;
}

export class OutputReader {
  readonly out: OutputCollector;
  readonly #marker: Buffer;
  readonly #maxTrailerBytes: number;
  #frame: Buffer = Buffer.alloc(0);
  #pending: Buffer = Buffer.alloc(0); // stdout bytes that may be the start of the marker
  #trailer: Buffer[] | undefined;
  #trailerBytes = 0;
  trailerTooLarge = false;
  trailer: Trailer | undefined;

  constructor(nonce: string, outputBytes: number, maxOutFileBytes: number) {
    this.out = new OutputCollector(outputBytes);
    this.#marker = Buffer.from(`\n${nonce} exit `);
    // base64 of the tar (4/3, plus tar headers) and the trailer lines.
    this.#maxTrailerBytes = Math.ceil(maxOutFileBytes * 1.4) + 64 * 1024;
  }

  /** Feeds raw attach-stream bytes; returns true once the trailer is complete. */
  push(chunk: Buffer): boolean {
    this.#frame = this.#frame.length ? Buffer.concat([this.#frame, chunk]) : chunk;
    while (this.#frame.length >= 8) {
      const size = this.#frame.readUInt32BE(4);
      if (this.#frame.length < 8 + size) break;
      const stream = this.#frame[0];
      const payload = this.#frame.subarray(8, 8 + size);
      this.#frame = this.#frame.subarray(8 + size);
      if (stream === 2) this.out.write(2, payload);
      else if (stream === 1) this.#stdout(payload);
    }
    return this.trailer !== undefined;
  }

  #stdout(payload: Buffer): void {
    if (this.#trailer) {
      this.#collectTrailer(payload);
      return;
    }
    const buf = this.#pending.length ? Buffer.concat([this.#pending, payload]) : payload;
    const at = buf.indexOf(this.#marker);
    if (at !== -1) {
      this.out.write(1, buf.subarray(0, at));
      this.#pending = Buffer.alloc(0);
      this.#trailer = [];
      this.#collectTrailer(buf.subarray(at + 1));
      return;
    }
    const keep = Math.min(buf.length, this.#marker.length - 1);
    this.out.write(1, buf.subarray(0, buf.length - keep));
    this.#pending = Buffer.from(buf.subarray(buf.length - keep));
  }

  #collectTrailer(payload: Buffer): void {
    this.#trailerBytes += payload.length;
    if (this.#trailerBytes > this.#maxTrailerBytes) {
      // More than the out/ cap allows: keep reading for the end line, drop the files.
      this.trailerTooLarge = true;
      const tail = Buffer.concat([...(this.#trailer ?? []).slice(-1), payload]).subarray(-256);
      this.#trailer = [tail];
    } else {
      this.#trailer!.push(payload);
    }
    const text = Buffer.concat(this.#trailer!).toString('latin1');
    const nonce = this.#marker.subarray(1, this.#marker.length - 6).toString();
    if (!text.endsWith(`${nonce} end\n`)) return;
    const exit = /^(\S+) exit (-?\d+)\n/.exec(text);
    const out = this.trailerTooLarge ? undefined : new RegExp(`\\n${nonce} out ([A-Za-z0-9+/=]*)\\n`).exec(text);
    this.trailer = { exitCode: exit ? Number(exit[2]) : -1, outTarBase64: out?.[1] };
  }

  /** Output that never reached the trailer (the container died first). */
  flush(): void {
    if (!this.#trailer && this.#pending.length) this.out.write(1, this.#pending);
    this.#pending = Buffer.alloc(0);
  }
}
