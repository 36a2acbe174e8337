import { StaticAuthenticator } from '../../src/auth/static.js';
import { describeAuthenticator } from './authenticator.contract.js';

// It holds every secret in the clear, so it offers APOP, CRAM-MD5 and SCRAM-SHA-256 (keys worked out).
describeAuthenticator('StaticAuthenticator', (_t, users, _oauth, policies) =>
  Promise.resolve({
    authenticator: new StaticAuthenticator(users, { policies }),
    offers: ['APOP', 'CRAM-MD5', 'SCRAM-SHA-256'],
  }),
);

describeAuthenticator('StaticAuthenticator with a token verifier', (_t, users, oauth, policies) =>
  Promise.resolve({
    authenticator: new StaticAuthenticator(users, { oauth, policies }),
    offers: ['APOP', 'CRAM-MD5', 'SCRAM-SHA-256', 'BEARER'],
  }),
);
