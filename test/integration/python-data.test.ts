// The python-data profile end to end: numpy, pandas and matplotlib in a real container; a chart
// saved under /work/out comes back as a PNG whose header says what was drawn.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containersOf } from '../helpers/docker.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let auth: Record<string, string>;

beforeAll(async () => {
  sg = await startSandgate({}, 'all', ['python-data']);
  ({ auth } = await sg.agent({ profiles: ['python-data'] }));
}, 60_000);
afterAll(async () => {
  const prefix = sg.config.SANDGATE_PREFIX;
  await sg?.stop();
  expect(await containersOf(prefix)).toEqual([]);
});

const run = async (payload: Record<string, unknown>) => {
  const res = await sg.app!.inject({ method: 'POST', url: '/v1/executions?wait=true', headers: auth, payload });
  return { status: res.statusCode, body: res.json() };
};

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height from the IHDR chunk, which must come first (PNG spec, 11.2.2). */
function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
  expect(png.readUInt32BE(8)).toBe(13); // IHDR's data length
  expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('python-data', () => {
  it('a pandas + matplotlib chart saved in out/ comes back as a valid PNG of the asked size', async () => {
    const code = [
      'import numpy as np, pandas as pd, matplotlib',
      'import matplotlib.pyplot as plt',
      'df = pd.DataFrame({"x": np.arange(10), "y": np.arange(10) ** 2})',
      'ax = df.plot(x="x", y="y", kind="line", figsize=(4, 3))',
      'ax.figure.savefig("out/chart.png", dpi=100)',
      'print(matplotlib.get_backend(), int(df["y"].sum()))',
    ].join('\n');
    const { status, body } = await run({ profile: 'python-data', code });
    expect(status).toBe(200);
    expect(body.status).toBe('succeeded');
    expect(body.stdout).toBe('agg 285\n');
    // The config dir is writable and seeded: matplotlib neither warns nor rebuilds its font cache.
    expect(body.stderr).toBe('');
    expect(body.files).toHaveLength(1);
    const [file] = body.files;
    expect(file).toMatchObject({ path: 'chart.png', encoding: 'base64' });
    const png = Buffer.from(file.content, 'base64');
    expect(pngSize(png)).toEqual({ width: 400, height: 300 });
    expect(png.subarray(-8, -4).toString('latin1')).toBe('IEND');
  }, 90_000);

  it('an array larger than the memory ceiling ends memory_exceeded', async () => {
    const { body } = await run({
      profile: 'python-data',
      code: 'import numpy as np\na = np.ones((1024, 1024, 128))  # 1 GiB of float64\nprint(a.sum())',
      memoryMb: 256,
    });
    expect(body.status).toBe('memory_exceeded');
  }, 90_000);

  it('a limit above the profile ceiling is refused', async () => {
    const { status, body } = await run({ profile: 'python-data', code: 'print(1)', timeoutMs: 60_001 });
    expect(status).toBe(400);
    expect(body.error.code).toBe('limit_exceeds_profile');
  });
});
