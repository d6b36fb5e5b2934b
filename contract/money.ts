// Money is counted in integer nano-units wherever it is added up (Redis, settlements), so that
// thousands of reserve/refund steps never drift the way float sums do.
export const NANOS = 1e9;
export const toNanos = (amount: number): number => Math.round(amount * NANOS);
export const fromNanos = (nanos: number): number => nanos / NANOS;
