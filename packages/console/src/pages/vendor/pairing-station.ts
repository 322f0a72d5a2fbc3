/**
 * The pairing station's memory and rules, without React (docs/pairing.md): what a scan is, the shift
 * kept in localStorage (a reload or a crash loses nothing), the upload queue, and the beeps.
 */

export type KeyKind = 'imei' | 'mac';

export interface StationSetup {
  station: string;
  keyKind: KeyKind;
  batchId: string | null;
  modelId: string | null;
  /** What the header shows: the batch's SN range or the model's name. */
  title: string;
  productKey: string;
}

export type Refusal =
  | 'device_key_invalid'
  | 'label_unreadable'
  | 'unknown_sn'
  | 'other_model'
  | 'other_batch'
  | 'device_key_taken'
  | 'sn_taken'
  | 'duplicate'
  /** Station-side: the same code twice, or a code already paired in this shift. */
  | 'duplicate_scan'
  | 'bad_check_digit'
  /** The server turned the request down (not a refusal of the pair: a 4xx such as a lost permission). */
  | 'rejected';

export interface PairEntry {
  /** The idempotency key: one per pair, kept across retries. */
  key: string;
  deviceKey: string;
  label: string;
  scannedAt: number;
  state: 'queued' | 'paired' | 'refused';
  reason?: Refusal;
  sn?: string | null;
  conflict?: string | null;
  message?: string;
  /** Answered only after an upload that waited for the network. */
  late?: boolean;
}

export interface Shift extends StationSetup {
  shiftId: string;
  startedAt: number;
  paired: number;
  refused: number;
  /** Pairs not yet answered by the server, oldest first. */
  queue: PairEntry[];
  /** The newest answered pairs, newest first (the screen's list). */
  recent: PairEntry[];
  /** Refusals that came back after a network drop, until someone acknowledges them. */
  lateRefusals: PairEntry[];
  /** Times of the pairs of the last hour, for the rate. */
  times: number[];
  /** Normalised device keys and labels of this shift's pairs, for the duplicate-scan check (bounded). */
  seenKeys: string[];
  seenLabels: string[];
}

const RECENT = 12;
const SEEN = 5000;

export const storeKey = (vendorId: string) => `bindery.pairing.${vendorId}`;

export function loadShift(vendorId: string): Shift | null {
  try {
    const raw = localStorage.getItem(storeKey(vendorId));
    return raw ? (JSON.parse(raw) as Shift) : null;
  } catch {
    return null;
  }
}

export function saveShift(vendorId: string, s: Shift | null): void {
  if (s === null) localStorage.removeItem(storeKey(vendorId));
  else localStorage.setItem(storeKey(vendorId), JSON.stringify(s));
}

export function randomKey(len = 20): string {
  const a = new Uint8Array(len);
  crypto.getRandomValues(a);
  const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(a, (b) => abc[b % abc.length]).join('');
}

export function newShift(setup: StationSetup, now: number): Shift {
  const day = new Date(now).toISOString().slice(0, 10).replace(/-/g, '');
  return {
    ...setup,
    shiftId: `${day}-${setup.station}-${randomKey(6)}`,
    startedAt: now,
    paired: 0,
    refused: 0,
    queue: [],
    recent: [],
    lateRefusals: [],
    times: [],
    seenKeys: [],
    seenLabels: [],
  };
}

/** A DeviceKey as the server compares it: lower case, separators dropped. */
export const keyNorm = (k: string) => k.toLowerCase().replace(/[:-]/g, '');

/** The IMEI check digit (Luhn over the first 14 digits). */
export function imeiValid(s: string): boolean {
  if (!/^\d{15}$/.test(s)) return false;
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    let d = s.charCodeAt(i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export type ScanKind = { kind: 'key'; value: string; valid: boolean } | { kind: 'label'; value: string };

/**
 * Which half of a pair a scan is. A module's key has a fixed shape (15 digits for an IMEI; six hex
 * pairs for a MAC); anything else is the device's label (URL, Quectel content, custom, or bare SN).
 * 15 digits with a wrong check digit is still read as an IMEI (and refused), never as an SN.
 */
export function classify(text: string, kind: KeyKind): ScanKind {
  const t = text.trim();
  if (kind === 'imei' && /^\d{15}$/.test(t)) return { kind: 'key', value: t, valid: imeiValid(t) };
  if (kind === 'mac' && /^[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}$/.test(t)) return { kind: 'key', value: t, valid: true };
  return { kind: 'label', value: t };
}

/** Records an answered pair in the shift's counts and lists. */
export function recordAnswer(s: Shift, e: PairEntry, now: number): Shift {
  // Answered once only: a second answer for the same key (a retry that overlapped) changes nothing.
  if (!s.queue.some((q) => q.key === e.key)) return s;
  const paired = e.state === 'paired';
  const times = paired ? [...s.times.filter((t) => t > now - 3_600_000), now] : s.times;
  return {
    ...s,
    paired: s.paired + (paired ? 1 : 0),
    refused: s.refused + (paired ? 0 : 1),
    times,
    recent: [e, ...s.recent.filter((r) => r.key !== e.key)].slice(0, RECENT),
    lateRefusals: e.late && !paired ? [...s.lateRefusals, e] : s.lateRefusals,
    queue: s.queue.filter((q) => q.key !== e.key),
  };
}

/** Marks a pair's codes as used in this shift (a second scan of either is a duplicate). */
export function remember(s: Shift, deviceKey: string, label: string): Shift {
  return {
    ...s,
    seenKeys: [...s.seenKeys, keyNorm(deviceKey)].slice(-SEEN),
    seenLabels: [...s.seenLabels, label.trim().toLowerCase()].slice(-SEEN),
  };
}

/** Forgets a pair's codes (the server refused it: the same module or label may be scanned again). */
export function forget(s: Shift, deviceKey: string, label: string): Shift {
  const k = keyNorm(deviceKey);
  const l = label.trim().toLowerCase();
  const drop = (list: string[], v: string) => {
    const i = list.lastIndexOf(v);
    return i < 0 ? list : [...list.slice(0, i), ...list.slice(i + 1)];
  };
  return { ...s, seenKeys: drop(s.seenKeys, k), seenLabels: drop(s.seenLabels, l) };
}

/** Pairs per hour: over the last hour, or since the shift started when it is younger. */
export function ratePerHour(s: Shift, now: number): number {
  const since = Math.max(s.startedAt, now - 3_600_000);
  const n = s.times.filter((t) => t > now - 3_600_000).length;
  const hours = Math.max((now - since) / 3_600_000, 1 / 60);
  return Math.round(n / hours);
}

let audio: AudioContext | null = null;

/** A short tone sequence (no sound file): high for a pair, low and double for a refusal. */
export function beep(kind: 'ok' | 'refused' | 'queued'): void {
  try {
    audio ??= new AudioContext();
    const ctx = audio;
    const tones: Array<[number, number]> =
      kind === 'ok'
        ? [[1320, 0.12]]
        : kind === 'queued'
          ? [
              [880, 0.08],
              [880, 0.08],
            ]
          : [
              [220, 0.22],
              [180, 0.3],
            ];
    let t = ctx.currentTime;
    for (const [freq, len] of tones) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = kind === 'refused' ? 'square' : 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.25, t);
      gain.gain.exponentialRampToValueAtTime(0.001, t + len);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + len);
      t += len + 0.05;
    }
  } catch {
    // no audio device: the screen still says it
  }
}
