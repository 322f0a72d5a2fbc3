/**
 * A 15-digit IMEI with its Luhn check digit: the 14 digits of `base + n`, then the digit that makes
 * the Luhn sum a multiple of 10. For tests and benchmarks that need device keys a station accepts.
 */
export function imei(n: number, base = 35_209_000_000_000): string {
  const body = String(base + n).padStart(14, '0');
  let sum = 0;
  for (let i = 0; i < 14; i++) {
    let d = Number(body[i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}
