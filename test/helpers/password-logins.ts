import assert from 'node:assert/strict';
import type { Pop3TestClient } from './pop3-client.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** One login by each method that sends a password: USER/PASS, AUTH PLAIN and AUTH LOGIN; the last reply. */
export const PASSWORD_LOGINS: Readonly<
  Record<string, (client: Pop3TestClient, user: string, password: string) => Promise<string>>
> = {
  'USER/PASS': async (client, user, password) => {
    assert.equal(await client.command(`USER ${user}`), '+OK send PASS');
    return client.command(`PASS ${password}`);
  },
  'AUTH PLAIN': (client, user, password) => client.command(`AUTH PLAIN ${b64(`\0${user}\0${password}`)}`),
  'AUTH LOGIN': async (client, user, password) => {
    assert.equal(await client.command(`AUTH LOGIN ${b64(user)}`), `+ ${b64('Password:')}`);
    return client.command(b64(password));
  },
};
