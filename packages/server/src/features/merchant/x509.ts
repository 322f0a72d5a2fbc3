import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import forge from 'node-forge';

/**
 * X.509 certificates for the platform-certificate key mode. Node can read certificates but not
 * make them, so node-forge (pure JS) builds and signs them; keys themselves come from node:crypto.
 */
export interface CertificateInput {
  /** PEM of the RSA private key that signs the certificate (self-signed: the subject's own key). */
  privateKeyPem: string;
  publicKeyPem: string;
  /** 40 upper-case hex characters, as WeChat Pay platform serials are. */
  serialHex: string;
  commonName: string;
  organisation?: string;
  notBefore: Date;
  notAfter: Date;
}

/** A 20-byte serial as 40 upper-case hex; the top bit is clear so DER keeps it positive. */
export function newCertificateSerial(): string {
  const b = randomBytes(20);
  b[0] = (b[0]! & 0x7f) | 0x10;
  return b.toString('hex').toUpperCase();
}

export function createSelfSignedCertificate(input: CertificateInput): string {
  if (!/^[0-9A-F]{40}$/.test(input.serialHex)) throw new Error('serialHex must be 40 upper-case hex characters');
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(input.publicKeyPem);
  cert.serialNumber = input.serialHex.toLowerCase();
  cert.validity.notBefore = input.notBefore;
  cert.validity.notAfter = input.notAfter;
  const attrs = [
    { shortName: 'CN', value: input.commonName },
    { shortName: 'O', value: input.organisation ?? 'Bindery' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, nonRepudiation: true, keyEncipherment: true },
  ]);
  // forge reads PKCS#1 PEM; normalise whatever node:crypto produced.
  const pkcs1 = createPrivateKey(input.privateKeyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
  cert.sign(forge.pki.privateKeyFromPem(pkcs1), forge.md.sha256.create());
  const pem = forge.pki.certificateToPem(cert);
  // Round-trip through node's parser so a certificate node cannot read never leaves here.
  new X509Certificate(pem);
  return pem;
}

/** Serial (upper-case hex), public key and expiry of a certificate PEM, or an error message. */
export function readCertificate(
  pem: string,
): { ok: true; serial: string; publicKeyPem: string; notAfter: number } | { ok: false; problem: string } {
  try {
    const c = new X509Certificate(pem);
    if (c.publicKey.asymmetricKeyType !== 'rsa') return { ok: false, problem: 'the certificate key must be RSA' };
    return {
      ok: true,
      serial: c.serialNumber.toUpperCase(),
      publicKeyPem: c.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      notAfter: Date.parse(c.validTo),
    };
  } catch (e) {
    return { ok: false, problem: `certificate_pem is not a PEM X.509 certificate (${(e as Error).message})` };
  }
}
