/** Milliseconds from a monotonic clock. */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Runs `n` tasks, `c` at a time; returns per-task latencies (ms) and the wall time (s). */
export async function pool(n: number, c: number, task: (i: number) => Promise<void>): Promise<{ lat: number[]; wallS: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t = now();
        await task(i);
        lat.push(now() - t);
      }
    }),
  );
  return { lat, wallS: (now() - t0) / 1000 };
}
