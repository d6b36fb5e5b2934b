// Input files land under the sandbox's /work: only relative paths that stay there are accepted.

/** Returns why `path` is refused, or undefined when it is a safe relative path. */
export function filePathProblem(path: string): string | undefined {
  return relativePathProblem(path) ?? (path === 'out' ? '"out" is the output directory' : undefined);
}

/**
 * The same rule for a path a sandbox hands back from /work/out: it names a file the caller
 * may write somewhere, so it is as untrusted as an input path.
 */
export function relativePathProblem(path: string): string | undefined {
  if (path.length === 0) return 'must not be empty';
  if (Buffer.byteLength(path) > 1024) return 'must be at most 1024 bytes';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'must be relative';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (/[\x00-\x1f\x7f-\x9f]/.test(path)) return 'must not contain control characters';
  // A Windows client would read a backslash as a separator (..\x, C:\x).
  if (path.includes('\\')) return 'must not contain a backslash';
  const parts = path.split('/');
  if (parts.some((p) => p === '..')) return 'must not contain ".."';
  if (parts.some((p) => p === '' || p === '.')) return 'must not contain empty or "." segments';
  return undefined;
}
