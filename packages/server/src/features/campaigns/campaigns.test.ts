import { describe, expect, it } from 'vitest';
import { canarySize, judge, nextRate, validateSpec } from './campaigns.model.js';

/** The arithmetic of stages and abort criteria (the 1 000-device runs are campaigns.fleet.test.ts). */
describe('campaign stages and abort criteria', () => {
  const t = { min_executions: 10, failure_pct: 10, timeout_pct: 20, did_not_come_back_pct: 5 };

  it('judges nothing before the minimum number of executions, then names the criterion and the figures', () => {
    expect(judge(t, { executed: 9, succeeded: 0, failed: 9, timed_out: 0, did_not_come_back: 0 })).toBeNull();
    expect(judge(t, { executed: 20, succeeded: 19, failed: 1, timed_out: 0, did_not_come_back: 0 })).toBeNull();
    const f = judge(t, { executed: 20, succeeded: 18, failed: 2, timed_out: 0, did_not_come_back: 0 });
    expect(f?.criterion).toBe('failure');
    expect(f?.reason).toBe(
      '10.0% failed, at or above the 10% threshold: 2 of 20 executions ended (18 succeeded, 2 failed, 0 timed out, 0 did not come back)',
    );
    // Did-not-come-back is checked first: those devices also count as timed out.
    expect(judge(t, { executed: 20, succeeded: 15, failed: 0, timed_out: 5, did_not_come_back: 5 })?.criterion).toBe(
      'did_not_come_back',
    );
    expect(judge(t, { executed: 20, succeeded: 16, failed: 0, timed_out: 4, did_not_come_back: 0 })?.criterion).toBe('timeout');
    expect(
      judge({ ...t, failure_pct: null }, { executed: 20, succeeded: 10, failed: 10, timed_out: 0, did_not_come_back: 0 }),
    ).toBeNull();
  });

  it('sizes the canary and grows the rate by the factor up to the cap', () => {
    const s = { rate_per_minute: 100, factor: 1.5, stage_size: 50 };
    expect(canarySize({ ...s, canary_count: 20 }, 1000)).toBe(20);
    expect(canarySize({ ...s, canary_count: 20 }, 5)).toBe(5);
    expect(canarySize({ ...s, canary_percent: 2.5 }, 1000)).toBe(25);
    expect(canarySize(s, 1000)).toBe(0);
    expect(nextRate(s, 100)).toBe(150);
    expect(nextRate({ ...s, max_rate_per_minute: 120 }, 100)).toBe(120);
  });

  it('refuses nonsense settings, each problem named', () => {
    expect(validateSpec({ rate_per_minute: 10, factor: 2, stage_size: 10 }, t)).toEqual([]);
    expect(
      validateSpec({ rate_per_minute: 0, factor: 0.5, stage_size: 1.5 }, { ...t, min_executions: 0, failure_pct: 120 }),
    ).toEqual([
      'stages.rate_per_minute must be a whole number ≥ 1',
      'stages.factor must be between 1 and 10',
      'stages.stage_size must be a whole number ≥ 1',
      'thresholds.min_executions must be ≥ 1',
      'thresholds.failure_pct must be in (0, 100] or null',
    ]);
  });
});
