/**
 * Maintenance windows (issue 14): a campaign notifies a device only while the local time of the
 * device's owner (the organisation's time zone, or the instance's) is inside [start, end). A window
 * whose end is not after its start runs past midnight; `days` (0 = Sunday … 6 = Saturday) name the
 * days a window *opens*, so a 22:00–02:00 window on Friday still holds at 01:00 on Saturday.
 * Local time comes from Intl (the platform's tz database), so daylight saving is followed.
 */
export interface MaintenanceWindow {
  start: string;
  end: string;
  days?: number[];
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

export function validateWindow(w: MaintenanceWindow): string[] {
  const p: string[] = [];
  if (typeof w.start !== 'string' || !HHMM.test(w.start)) p.push('maintenance_window.start must be HH:MM (00:00–23:59)');
  if (typeof w.end !== 'string' || !HHMM.test(w.end)) p.push('maintenance_window.end must be HH:MM (00:00–23:59)');
  if (p.length === 0 && w.start === w.end) p.push('maintenance_window.start and end must differ');
  if (w.days !== undefined) {
    if (!Array.isArray(w.days) || w.days.length === 0 || w.days.some((d) => !Number.isInteger(d) || d < 0 || d > 6)) {
      p.push('maintenance_window.days must list weekdays 0 (Sunday) – 6 (Saturday)');
    }
  }
  return p;
}

/** The window as stored: days sorted, without repeats. */
export function normaliseWindow(w: MaintenanceWindow): MaintenanceWindow {
  return { start: w.start, end: w.end, ...(w.days ? { days: [...new Set(w.days)].sort((a, b) => a - b) } : {}) };
}

export function isTimeZone(tz: unknown): tz is string {
  if (typeof tz !== 'string' || tz.length === 0 || tz.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The weekday (0 = Sunday) and minute of the day at `at` in `timeZone`. */
export function localTime(at: number, timeZone: string): { day: number; minute: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  let day = 0;
  let hour = 0;
  let minute = 0;
  for (const part of f.formatToParts(at)) {
    if (part.type === 'weekday') day = WEEKDAYS[part.value] ?? 0;
    else if (part.type === 'hour') hour = Number(part.value) % 24;
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return { day, minute: hour * 60 + minute };
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** True when `at` lies inside the window in `timeZone`. */
export function insideWindow(w: MaintenanceWindow, at: number, timeZone: string): boolean {
  const { day, minute } = localTime(at, timeZone);
  const start = minutes(w.start);
  const end = minutes(w.end);
  const opensOn = (d: number) => !w.days || w.days.includes(d);
  if (start < end) return minute >= start && minute < end && opensOn(day);
  // Past midnight: the evening part belongs to today's window, the morning part to yesterday's.
  if (minute >= start) return opensOn(day);
  if (minute < end) return opensOn((day + 6) % 7);
  return false;
}

/**
 * Milliseconds from `at` until the open window closes (0 when it is closed), by the wall clock at
 * `at`: constant time, so the scheduler can ask it per device. Across a daylight-saving change
 * inside the window it is off by that change (an hour), which only bounds a queued push's life.
 */
export function leftInWindow(w: MaintenanceWindow, at: number, timeZone: string): number {
  if (!insideWindow(w, at, timeZone)) return 0;
  const { minute } = localTime(at, timeZone);
  const end = minutes(w.end);
  const left = end > minute ? end - minute : 1440 - minute + end;
  return left * 60_000 - (at % 60_000);
}
