// Reads the entries of a tar archive (ustar with GNU long names, as GNU tar writes /work/out),
// one header at a time. The archive may be cut anywhere (the supervisor stops it at a byte
// limit): an entry whose data is incomplete is reported as cut, never returned.
export interface TarEntry {
  /** The name as written in the archive, `./` removed. */
  path: string;
  /** '0' regular file, '5' directory, '2' symlink, '1' hard link, … */
  type: string;
  data: Buffer;
  /** The target of a hard link ('1'), `./` removed. */
  linkTo?: string;
}

export interface TarContents {
  entries: TarEntry[];
  /** False when the archive ended before its end-of-archive block (it was cut). */
  complete: boolean;
}

const BLOCK = 512;

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString('utf8');
}

const clean = (name: string) => name.replace(/^\.\//, '').replace(/\/$/, '');

export function readTar(archive: Buffer): TarContents {
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) return { entries, complete: true };
    const size = Number.parseInt(field(header, 124, 12).trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0) return { entries, complete: false };
    const dataEnd = offset + BLOCK + size;
    if (dataEnd > archive.length) return { entries, complete: false };
    const type = String.fromCharCode(header[156] ?? 0);
    const prefix = field(header, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    const data = archive.subarray(offset + BLOCK, dataEnd);
    longName = undefined;
    if (type === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
    else {
      const entry: TarEntry = { path: clean(name), type: type === '\0' ? '0' : type, data: Buffer.from(data) };
      if (type === '1') entry.linkTo = clean(field(header, 157, 100));
      entries.push(entry);
    }
    offset = offset + BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return { entries, complete: false };
}
