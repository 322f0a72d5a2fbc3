type JsQr = (
  data: Uint8ClampedArray,
  width: number,
  height: number,
  opts?: { inversionAttempts?: 'dontInvert' | 'onlyInvert' | 'attemptBoth' | 'invertFirst' },
) => { data: string } | null;

// jsQR is most of the bundle's weight: load it only when a frame or photo needs decoding without a
// native detector. It ships CommonJS, so the default export may sit one level down.
let jsQrModule: Promise<JsQr> | null = null;
const loadJsQr = (): Promise<JsQr> => {
  jsQrModule ??= import('jsqr').then((m) => {
    const mod = m as unknown as { default: JsQr | { default: JsQr } };
    return typeof mod.default === 'function' ? mod.default : mod.default.default;
  });
  return jsQrModule;
};

/**
 * QR decoding in the browser: the native BarcodeDetector when the browser has one with QR support
 * (Android Chrome, Safari 17+), otherwise jsQR on the pixels. Both take the same sources.
 */
type Source = HTMLVideoElement | ImageBitmap | HTMLCanvasElement;

interface NativeDetector {
  detect(source: Source): Promise<Array<{ rawValue: string }>>;
}
interface NativeDetectorCtor {
  new (opts: { formats: string[] }): NativeDetector;
  getSupportedFormats?(): Promise<string[]>;
}

let native: Promise<NativeDetector | null> | null = null;

function nativeDetector(): Promise<NativeDetector | null> {
  native ??= (async () => {
    const Ctor = (globalThis as unknown as { BarcodeDetector?: NativeDetectorCtor }).BarcodeDetector;
    if (!Ctor) return null;
    try {
      const formats = (await Ctor.getSupportedFormats?.()) ?? ['qr_code'];
      return formats.includes('qr_code') ? new Ctor({ formats: ['qr_code'] }) : null;
    } catch {
      return null;
    }
  })();
  return native;
}

/** Which decoder is in use, for the page to say so. */
export async function decoderName(): Promise<'BarcodeDetector' | 'jsQR'> {
  return (await nativeDetector()) ? 'BarcodeDetector' : 'jsQR';
}

const canvas = typeof document === 'undefined' ? null : document.createElement('canvas');

function sizeOf(s: Source): { w: number; h: number } {
  if (s instanceof HTMLVideoElement) return { w: s.videoWidth, h: s.videoHeight };
  return { w: s.width, h: s.height };
}

export async function decodeQr(source: Source): Promise<string | null> {
  const det = await nativeDetector();
  if (det) {
    try {
      const found = await det.detect(source);
      if (found[0]) return found[0].rawValue;
    } catch {
      // fall back to jsQR below
    }
  }
  if (!canvas) return null;
  let { w, h } = sizeOf(source);
  if (!w || !h) return null;
  // Large photos decode slowly and no better: scale the longer side down to 1280 px.
  const k = Math.min(1, 1280 / Math.max(w, h));
  w = Math.round(w * k);
  h = Math.round(h * k);
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) return null;
  ctx.drawImage(source, 0, 0, w, h);
  const img = ctx.getImageData(0, 0, w, h);
  const jsQR = await loadJsQr();
  return jsQR(img.data, w, h, { inversionAttempts: 'attemptBoth' })?.data ?? null;
}

export async function decodeFile(file: File): Promise<string | null> {
  const bmp = await createImageBitmap(file);
  try {
    return await decodeQr(bmp);
  } finally {
    bmp.close();
  }
}
