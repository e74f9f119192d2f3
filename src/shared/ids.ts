import { randomBytes } from 'node:crypto';

/** Resource id prefixes of SPEC §1. */
export type IdPrefix = 'usr' | 'key' | 'tkt' | 'whk' | 'msg' | 'att' | 'evt' | 'req';

/** An opaque id: the type prefix and 96 random bits (SPEC asks for at least 80). */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}
