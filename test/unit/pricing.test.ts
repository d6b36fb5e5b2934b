// What a run costs: the worst case reserved before it runs, and what it used after it ended,
// never more than the worst case; unmeasured usage costs the worst case.
import { describe, expect, it } from 'vitest';
import { fromNanos, toNanos } from '../../contract/money.ts';
import type { Profile } from '../../contract/profile.ts';
import { actualCost, worstCaseCost } from '../../guard/budget/pricing.ts';

const docker = { engine: 'docker', cpus: 2, price: { perRun: 0.001, perCpuSecond: 0.01, perGbSecond: 0.1 } } as Profile;
const isolate = { engine: 'isolate', price: { perRun: 0, perCpuSecond: 1, perGbSecond: 0 } } as Profile;
const limits = { timeoutMs: 10_000, memoryMb: 512, outputBytes: 1024 };

describe('pricing', () => {
  it('worst case = per run + CPU ceiling (timeout × CPUs) + memory ceiling × timeout', () => {
    // 0.001 + 0.01 × 10 s × 2 + 0.1 × 0.5 GB × 10 s
    expect(worstCaseCost(docker, limits)).toBeCloseTo(0.001 + 0.2 + 0.5, 9);
    // the isolate has one core
    expect(worstCaseCost(isolate, limits)).toBeCloseTo(10, 9);
  });

  it('actual cost from measured CPU time and peak memory × wall time', () => {
    const usage = { cpuMs: 1500, wallMs: 2000, memoryBytes: 256 * 1024 * 1024 };
    expect(actualCost(docker, limits, usage)).toBeCloseTo(0.001 + 0.015 + 0.1 * 0.25 * 2, 9);
  });

  it('never more than the worst case, even for a run that overshot its deadline', () => {
    const usage = { cpuMs: 25_000, wallMs: 12_000, memoryBytes: 2 * 1024 ** 3 };
    expect(actualCost(docker, limits, usage)).toBe(worstCaseCost(docker, limits));
  });

  it('usage that could not be measured costs the worst case, never zero', () => {
    const usage = { cpuMs: 0, wallMs: 5, memoryBytes: 0, measured: false };
    expect(actualCost(docker, limits, usage)).toBe(worstCaseCost(docker, limits));
    expect(actualCost(docker, limits, { ...usage, measured: true })).toBeCloseTo(0.001, 9);
  });

  it('counts money in integer nano-units: a thousand small amounts add up exactly', () => {
    let nanos = 0;
    for (let i = 0; i < 1000; i++) nanos += toNanos(0.000_000_1);
    expect(fromNanos(nanos)).toBe(0.0001);
  });
});
