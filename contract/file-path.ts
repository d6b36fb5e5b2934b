// Input files land under the sandbox's /work: only relative paths that stay there are accepted.

/** Returns why `path` is refused, or undefined when it is a safe relative path. */
export function filePathProblem(path: string): string | undefined {
  if (path.startsWith('/') || path.startsWith('\\')) return 'must be relative';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (/[\x00-\x1f\x7f]/.test(path)) return 'must not contain control characters';
  const parts = path.split('/');
  if (parts.some((p) => p === '..')) return 'must not contain ".."';
  if (parts.some((p) => p === '' || p === '.')) return 'must not contain empty or "." segments';
  if (parts[0] === 'out' && parts.length === 1) return '"out" is the output directory';
  return undefined;
}
