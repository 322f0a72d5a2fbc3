import { afterEach, describe, expect, it } from 'vitest';
import { packMatrix, qrMatrix } from './qr-render.js';
import { acquireRenderPool } from './render-pool.js';

/** Shared buffers for a PDF job of `n` labels (see PdfJob). */
function labels(n: number) {
  const sns = new SharedArrayBuffer(n * 8);
  const snOffsets = new Uint32Array(new SharedArrayBuffer(4 * (n + 1)));
  const codes = new SharedArrayBuffer(n * 6);
  Buffer.from(codes).fill('1');
  const packed = packMatrix(qrMatrix('pk=p&sn=SN&v=1'));
  const matrices = new Uint8Array(new SharedArrayBuffer(n * packed.length));
  const offsets = new Uint32Array(new SharedArrayBuffer(4 * (n + 1)));
  const snView = Buffer.from(sns);
  for (let i = 0; i <= n; i++) {
    if (i < n) {
      snView.write(`SN${String(i).padStart(6, '0')}`, i * 8, 'latin1');
      matrices.set(packed, i * packed.length);
    }
    snOffsets[i] = i * 8;
    offsets[i] = i * packed.length;
  }
  return {
    sns,
    snOffsets: snOffsets.buffer as SharedArrayBuffer,
    codes,
    matrices: matrices.buffer as SharedArrayBuffer,
    offsets: offsets.buffer as SharedArrayBuffer,
  };
}

const leases: Array<ReturnType<typeof acquireRenderPool>> = [];
afterEach(async () => {
  for (const l of leases.splice(0)) await l.release();
});

describe('the shared render pool (issue 16)', () => {
  it('gives concurrent zips one set of workers, and stops it when the last one is done', async () => {
    const a = acquireRenderPool();
    const b = acquireRenderPool();
    leases.push(a, b);
    expect(b.pool).toBe(a.pool);
    const [x, y] = await Promise.all([
      a.pool.render([['SN1', 'pk=p&sn=SN1&v=1']], { png: true, svg: false, matrix: false }),
      b.pool.render([['SN2', 'pk=p&sn=SN2&v=1']], { png: true, svg: false, matrix: false }),
    ]);
    expect(x[0]!.png!.data.length).toBeGreaterThan(100);
    expect(y[0]!.png!.data.length).toBeGreaterThan(100);
    await a.release();
    // Still b's: the workers keep running.
    await expect(b.pool.render([['SN3', 'pk=p&sn=SN3&v=1']], { png: true, svg: false, matrix: false })).resolves.toHaveLength(1);
    await b.release();
    await expect(b.pool.render([['SN4', 'x']], { png: true, svg: false, matrix: false })).rejects.toThrow();
    const c = acquireRenderPool();
    leases.push(c);
    expect(c.pool).not.toBe(a.pool);
  });

  it('stops an abandoned PDF job at its next page, and the pool serves the next zip', async () => {
    const lease = acquireRenderPool();
    leases.push(lease);
    // Nobody reads the chunks: without the cancel the job would wait for credit forever.
    const job = lease.pool.pdf(0, { layout: 'roll', meta: { modelName: 'M', batchId: 'b' }, ...labels(3000) });
    job.cancel();
    await expect(job.done).rejects.toThrow(/cancelled/);
    const again = await lease.pool.render([['SN1', 'pk=p&sn=SN1&v=1']], { png: false, svg: true, matrix: false });
    expect(again[0]!.svg!.size).toBeGreaterThan(100);
  }, 60_000);
});
