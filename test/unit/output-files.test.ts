// The files a container run hands back: every name is checked like an input path, only regular
// files come back, and the caps count content bytes and files, not archive bytes.
import { describe, expect, it } from 'vitest';
import { outputFiles } from '../../runner/engines/docker/output-files.ts';
import { makeTar } from '../helpers/tar.ts';

const caps = { maxCount: 32, maxBytes: 1 << 20, outMaxBytes: 1000, outMaxCount: 5 };

describe('files returned from out/', () => {
  it('returns regular files, UTF-8 as text and binary as base64, and skips ./ and directories', () => {
    const tar = makeTar([
      { name: './', type: '5' },
      { name: './a.txt', data: 'hi' },
      { name: './sub/', type: '5' },
      { name: './sub/b.bin', data: Buffer.from([0, 255]) },
    ]);
    const { files, notes } = outputFiles(tar, caps);
    expect(files).toEqual([
      { path: 'a.txt', content: 'hi', encoding: 'utf8' },
      { path: 'sub/b.bin', content: Buffer.from([0, 255]).toString('base64'), encoding: 'base64' },
    ]);
    expect(notes).toEqual([]);
  });

  it.each([
    '../x',
    './../x',
    'a/../../x',
    '/etc/x',
    '//etc/x',
    'a/..',
    'C:/x',
    'c:x',
    '..\\..\\x',
    'a\\b',
    'a\nb',
    'a\u0085b',
    'a//b',
    'a/./b',
    `${'d/'.repeat(600)}x`,
  ])('refuses the returned path %j and names it', (name) => {
    const { files, notes } = outputFiles(
      makeTar([
        { name, data: 'evil' },
        { name: './ok.txt', data: 'ok' },
      ]),
      caps,
    );
    expect(files.map((f) => f.path)).toEqual(['ok.txt']);
    expect(notes.join('\n')).toMatch(/refused 1 returned path/);
  });

  it('a hard link comes back as the same content under its own name', () => {
    const tar = makeTar([
      { name: './a', data: 'same' },
      { name: './b', type: '1', linkTo: './a' },
      { name: './c', type: '1', linkTo: './missing' },
    ]);
    expect(outputFiles(tar, caps).files).toEqual([
      { path: 'a', content: 'same', encoding: 'utf8' },
      { path: 'b', content: 'same', encoding: 'utf8' },
    ]);
  });

  it('never returns symlinks, devices or fifos, even with safe names', () => {
    const tar = makeTar([
      { name: './passwd', type: '2', data: '' },
      { name: './dev', type: '3' },
      { name: './fifo', type: '6' },
    ]);
    expect(outputFiles(tar, caps).files).toEqual([]);
  });

  it('stops at the file count and says how many were dropped', () => {
    const tar = makeTar(Array.from({ length: 9 }, (_, i) => ({ name: `./f${i}`, data: 'x' })));
    const { files, notes } = outputFiles(tar, caps);
    expect(files).toHaveLength(5);
    expect(notes.join('\n')).toMatch(/4 more file\(s\).*cap of 5 files/);
  });

  it('counts content bytes, not archive bytes: five 200-byte files fit a 1000-byte cap', () => {
    const tar = makeTar(Array.from({ length: 5 }, (_, i) => ({ name: `./f${i}`, data: 'y'.repeat(200) })));
    expect(tar.length).toBeGreaterThan(1000);
    const { files, notes } = outputFiles(tar, caps);
    expect(files).toHaveLength(5);
    expect(notes).toEqual([]);
  });

  it('drops a file past the byte cap but keeps smaller ones after it', () => {
    const tar = makeTar([
      { name: './big', data: 'z'.repeat(2000) },
      { name: './small', data: 's' },
    ]);
    const { files, notes } = outputFiles(tar, caps);
    expect(files.map((f) => f.path)).toEqual(['small']);
    expect(notes.join('\n')).toMatch(/past the cap of 1000 bytes/);
  });

  it('an archive cut in the middle of a file returns the whole files before it and says so', () => {
    const full = makeTar(
      [
        { name: './a', data: 'a'.repeat(10) },
        { name: './b', data: 'b'.repeat(3000) },
      ],
      { end: false },
    );
    const { files, notes } = outputFiles(full.subarray(0, full.length - 1000), caps);
    expect(files.map((f) => f.path)).toEqual(['a']);
    expect(notes.join('\n')).toMatch(/the rest was not read/);
  });

  it('garbage instead of a tar returns nothing and does not throw', () => {
    const { files, notes } = outputFiles(Buffer.from('not a tar at all'.repeat(100)), caps);
    expect(files).toEqual([]);
    expect(notes.length).toBeGreaterThan(0);
  });
});
