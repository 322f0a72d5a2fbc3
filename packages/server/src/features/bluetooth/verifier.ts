import { createHash } from 'node:crypto';
import { hexEquals } from '@bindery/protocol';
import { BT_SIGN_BYTES, btSignInput, type IdentityProof } from '@bindery/protocol/bluetooth';

/** BT-4: the high 64 bits of MD5(seed ‖ decimal(nonce)), as lowercase hex; the seed is the device's SecretNo. */
export function btSign(seed: string, nonce: number): string {
  return createHash('md5').update(btSignInput(seed, nonce), 'utf8').digest().subarray(0, BT_SIGN_BYTES).toString('hex');
}

/** BT-11: whether the proof was signed with this SecretNo (constant-time compare). Freshness is the caller's (nonces). */
export function proofSignedBy(proof: IdentityProof, secretNo: string): boolean {
  return hexEquals(btSign(secretNo, proof.nonce), proof.sign);
}
