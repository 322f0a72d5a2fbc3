import cliProgress from 'cli-progress';

/** A progress display for long work. Callers report; whether anything is drawn is decided here. */
export interface Progress {
  /** `done` of `total` units; extra values fill `{name}` placeholders of the format. */
  update(done: number, total: number, payload?: Record<string, string | number>): void;
  /** Removes the bar (call on success and on failure). */
  stop(): void;
}

const silent: Progress = { update() {}, stop() {} };

/**
 * A cli-progress bar on `stream` (stderr), but only for a person watching: with --json, or when
 * stderr is a pipe or file, nothing is written, so logs and captured output stay clean.
 */
export function createProgress(label: string, opts: { json: boolean; stream?: NodeJS.WriteStream; format?: string }): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.json || !stream.isTTY) return silent;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: opts.format ?? `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`,
      barsize: 30,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, payload = {}) {
      if (!started) {
        bar.start(Math.max(total, 1), done, payload);
        started = true;
        return;
      }
      if (total !== bar.getTotal()) bar.setTotal(Math.max(total, 1));
      bar.update(done, payload);
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
