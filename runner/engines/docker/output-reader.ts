// Reads a sandbox container's attached output: Docker's multiplexed frames (8-byte header:
// stream, 3 zero bytes, big-endian length) → stdout/stderr under the profile's byte cap, and on
// stdout the supervisor's trailer (images/entrypoint.sh), found by the run's nonce even past the
// cap. Only the supervisor knows the nonce (another uid than the program, out of its reach), so
// bytes the program wrote can never be taken for the trailer.
import { OutputCollector, type OutputListener } from '../output-collector.ts';

export interface Trailer {
  /** The program's exit status as the supervisor's wait(2) saw it. */
  exitCode: number;
  /** The tar of /work/out the supervisor sent (cut at its limit), when out/ was not empty. */
  outTar: Buffer | undefined;
  /** The files part was unreadable or larger than the supervisor can send: none come back. */
  outUnreadable: boolean;
}

export class OutputReader {
  readonly out: OutputCollector;
  readonly #nonce: string;
  readonly #end: Buffer;
  readonly #maxTrailerBytes: number;
  #frame: Buffer = Buffer.alloc(0);
  readonly #stdoutSplit: MarkerSplitter;
  readonly #stderrSplit: MarkerSplitter;
  #stderrDone = false;
  #after: Buffer[] | undefined; // stdout bytes after the marker
  #afterBytes = 0;
  #overflow = false;
  #tail: Buffer = Buffer.alloc(0); // the last bytes, to see the end line
  #exitCode: number | undefined;
  trailer: Trailer | undefined;

  /** `outLimit`: the tar bytes the supervisor sends at most (stdin-protocol.ts outTarLimit). */
  constructor(nonce: string, outputBytes: number, outLimit: number, output?: OutputListener) {
    this.out = new OutputCollector(outputBytes, output);
    this.#nonce = nonce;
    this.#end = Buffer.from(`${nonce} end\n`);
    this.#stdoutSplit = new MarkerSplitter(Buffer.from(`\n${nonce} exit `));
    this.#stderrSplit = new MarkerSplitter(Buffer.from(`\n${nonce} end\n`));
    // The exit line, base64 of the tar (4/3) and the two other lines.
    this.#maxTrailerBytes = Math.ceil(outLimit / 3) * 4 + 3 * (nonce.length + 32);
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
      if (stream === 2) this.#stderr(payload);
      else if (stream === 1) this.#stdout(payload);
    }
    return this.done;
  }

  /** The trailer is complete on stdout and stderr has reached its end marker. */
  get done(): boolean {
    return this.trailer !== undefined && this.#stderrDone;
  }

  #stdout(payload: Buffer): void {
    if (this.#after) {
      if (!this.trailer) this.#collectTrailer(payload);
      return;
    }
    const { before, after } = this.#stdoutSplit.push(payload);
    this.out.write(1, before);
    if (after) {
      this.#after = [];
      this.#collectTrailer(after);
    }
  }

  #stderr(payload: Buffer): void {
    if (this.#stderrDone) return;
    const { before, after } = this.#stderrSplit.push(payload);
    this.out.write(2, before);
    if (after) this.#stderrDone = true;
  }

  #collectTrailer(payload: Buffer): void {
    const after = this.#after!;
    if (this.#exitCode === undefined && this.#afterBytes < 8) {
      // The exit line comes first and is short: read it before anything can overflow.
      const head = Buffer.concat([...after, payload]).subarray(0, 8);
      const nl = head.indexOf(10);
      const line = nl === -1 ? '' : head.subarray(0, nl).toString('latin1');
      if (/^\d{1,3}$/.test(line)) {
        this.#exitCode = Number(line);
      }
    }
    this.#afterBytes += payload.length;
    this.#tail = Buffer.concat([this.#tail, payload]).subarray(-(this.#end.length + 1));
    if (this.#afterBytes > this.#maxTrailerBytes) {
      this.#overflow = true; // more than the supervisor ever sends: stop keeping it
      after.length = 0;
    } else {
      after.push(payload);
    }
    if (!endsWith(this.#tail, this.#end) || this.#exitCode === undefined) return;
    const body = this.#overflow ? '' : Buffer.concat(after).toString('latin1');
    const out = new RegExp(`\\n${this.#nonce} out ([A-Za-z0-9+/=]*)\\n${this.#nonce} end\\n$`).exec(body);
    const bare =
      /^\d{1,3}\n/.test(body) && body.indexOf(`${this.#nonce} out `) === -1 && body.endsWith(`\n${this.#nonce} end\n`);
    this.trailer = {
      exitCode: this.#exitCode,
      outTar: out ? Buffer.from(out[1]!, 'base64') : undefined,
      outUnreadable: !out && !bare,
    };
  }

  /** The supervisor's exit line, once read: known even if the rest of the trailer never comes. */
  get exitCode(): number | undefined {
    return this.#exitCode;
  }

  /** Output that never reached the trailer (the container died first). */
  flush(): void {
    if (!this.#after) this.out.write(1, this.#stdoutSplit.rest());
    if (!this.#stderrDone) this.out.write(2, this.#stderrSplit.rest());
  }
}

/** Splits a stream at the first occurrence of a marker, across chunk boundaries. */
class MarkerSplitter {
  readonly #marker: Buffer;
  #pending: Buffer = Buffer.alloc(0); // bytes that may be the start of the marker

  constructor(marker: Buffer) {
    this.#marker = marker;
  }

  push(payload: Buffer): { before: Buffer; after: Buffer | undefined } {
    const buf = this.#pending.length ? Buffer.concat([this.#pending, payload]) : payload;
    const at = buf.indexOf(this.#marker);
    if (at !== -1) {
      this.#pending = Buffer.alloc(0);
      return { before: buf.subarray(0, at), after: buf.subarray(at + this.#marker.length) };
    }
    // Only a tail that may begin the marker is held back (usually none, or a final newline), so
    // output reaches the event stream as it is written, not a marker's length later.
    const keep = this.#heldBack(buf);
    this.#pending = Buffer.from(buf.subarray(buf.length - keep));
    return { before: buf.subarray(0, buf.length - keep), after: undefined };
  }

  /** The length of the longest tail of `buf` that is a start of the marker. */
  #heldBack(buf: Buffer): number {
    for (let n = Math.min(buf.length, this.#marker.length - 1); n > 0; n--) {
      if (buf.subarray(buf.length - n).equals(this.#marker.subarray(0, n))) return n;
    }
    return 0;
  }

  rest(): Buffer {
    const rest = this.#pending;
    this.#pending = Buffer.alloc(0);
    return rest;
  }
}

function endsWith(buf: Buffer, suffix: Buffer): boolean {
  return buf.length >= suffix.length && buf.subarray(buf.length - suffix.length).equals(suffix);
}
