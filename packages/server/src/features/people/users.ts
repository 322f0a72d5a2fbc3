import type { Kysely, Transaction } from 'kysely';
import type { StorageCapabilities } from '../../adapters/storage/capabilities.js';
import type { Database, UsersTable } from '../../adapters/storage/schema.js';
import { fail } from '../../errors.js';
import { newId } from '../../shared/ids.js';
import { hashPassword } from '../../shared/passwords.js';
import type { UserView } from '../accounts/accounts.service.js';

/** The same rules as AccountsService.createUser, for users created inside a larger transaction. */
const USERNAME_RE = /^[a-zA-Z0-9._@-]{3,64}$/;
export const MIN_PASSWORD = 10;

export interface NewUserInput {
  username: string;
  password: string;
  displayName?: string;
}

export function userProblems(input: Partial<NewUserInput>): string[] {
  const problems: string[] = [];
  if (typeof input.username !== 'string' || !USERNAME_RE.test(input.username)) {
    problems.push('username must be 3–64 of letters, digits, . _ @ -');
  }
  if (typeof input.password !== 'string' || input.password.length < MIN_PASSWORD) {
    problems.push(`password must be at least ${MIN_PASSWORD} characters`);
  }
  if (input.displayName !== undefined && (typeof input.displayName !== 'string' || input.displayName.length > 128)) {
    problems.push('display_name must be at most 128 characters');
  }
  return problems;
}

/** A validated, hashed user row, ready to insert inside the caller's transaction. */
export async function newUserRow(input: NewUserInput, now: number): Promise<UsersTable> {
  const problems = userProblems(input);
  if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
  return {
    id: newId('usr'),
    username: input.username.toLowerCase(),
    display_name: input.displayName?.trim() || input.username,
    password_hash: await hashPassword(input.password),
    is_operator: 0,
    created_at: now,
  };
}

export async function insertUser(
  trx: Kysely<Database> | Transaction<Database>,
  caps: StorageCapabilities,
  row: UsersTable,
): Promise<void> {
  try {
    await trx.insertInto('users').values(row).execute();
  } catch (e) {
    if (caps.isUniqueViolation(e)) fail('ALREADY_EXISTS', `User ${row.username} exists already`);
    throw e;
  }
}

export function toUserView(r: Pick<UsersTable, 'id' | 'username' | 'display_name' | 'is_operator' | 'created_at'>): UserView {
  return {
    id: r.id,
    username: r.username,
    display_name: r.display_name,
    is_operator: r.is_operator === 1,
    created_at: new Date(r.created_at).toISOString(),
  };
}
