// Hand-made tar archives for the tests: entries no real file system can hold (../x, /etc/x), to
// show the engine's own checks, not just GNU tar's.
const BLOCK = 512;

function header(name: string, size: number, type: string, linkTo = ''): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write(linkTo.slice(0, 100), 157, 'utf8');
  h.write('0000644\0', 100);
  h.write('0001750\0', 108);
  h.write('0001750\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148); // checksum placeholder
  h.write(type, 156);
  h.write('ustar  \0', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

const pad = (data: Buffer) => Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);

export interface TarInput {
  name: string;
  data?: string | Buffer;
  type?: string;
  linkTo?: string;
}

/** A GNU tar archive of `entries`; names over 100 bytes get a long-name ('L') entry. */
export function makeTar(entries: TarInput[], { end = true } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    if (Buffer.byteLength(e.name) > 100) {
      const long = Buffer.from(`${e.name}\0`);
      parts.push(header('././@LongLink', long.length, 'L'), pad(long));
    }
    parts.push(header(e.name, data.length, e.type ?? '0', e.linkTo), pad(data));
  }
  if (end) parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
