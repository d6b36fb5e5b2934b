// `npm run bench -- <name>`: runs one benchmark and prints its figures. Never part of `npm test`.
const benches: Record<string, () => Promise<{ main(): Promise<void> }>> = {
  isolate: () => import('./isolate.ts'),
  docker: () => import('./docker.ts'),
  policy: () => import('./policy.ts'),
  budget: () => import('./budget.ts'),
  audit: () => import('./audit.ts'),
  watch: () => import('./watch.ts'),
  stream: () => import('./stream.ts'),
  ops: () => import('./ops.ts'),
  cluster: () => import('./cluster.ts'),
  mcp: () => import('./mcp.ts'),
};

const name = process.argv[2];
const load = name ? benches[name] : undefined;
if (!load) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}>`);
  process.exit(2);
}
await (await load()).main();
