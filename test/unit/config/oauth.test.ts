import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../../src/errors.js';
import { layerFromToml, resolveConfig } from '../../../src/config/config.js';

const oauthOf = (table: Record<string, unknown>) =>
  resolveConfig(layerFromToml({ oauth: table }, 'poplar.toml')).oauth;

const refuses = (table: unknown, ...parts: string[]): void => {
  assert.throws(
    () => layerFromToml({ oauth: table }, 'poplar.toml'),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      for (const part of parts)
        assert.ok(error.message.includes(part), `"${error.message}" should mention ${part}`);
      return true;
    },
  );
};

test('no [oauth] table: no bearer tokens', () => {
  assert.equal(resolveConfig().oauth, undefined);
});

test('[oauth] with an introspection endpoint and client credentials', () => {
  assert.deepEqual(
    oauthOf({
      introspectionUrl: 'https://idp.example/introspect',
      clientId: 'poplar',
      clientSecretFile: '/etc/poplar/oauth-secret',
      usernameClaim: 'preferred_username',
      timeoutMs: 3000,
    }),
    {
      introspectionUrl: 'https://idp.example/introspect',
      clientId: 'poplar',
      clientSecret: undefined,
      clientSecretFile: '/etc/poplar/oauth-secret',
      jwksUrl: undefined,
      jwksFile: undefined,
      issuer: undefined,
      audience: undefined,
      usernameClaim: 'preferred_username',
      timeoutMs: 3000,
    },
  );
});

test('[oauth] with a JWKS URL or file needs an audience', () => {
  const jwks = oauthOf({
    jwksUrl: 'https://idp.example/jwks',
    issuer: 'https://idp.example',
    audience: 'pop3',
  });
  assert.equal(jwks?.jwksUrl, 'https://idp.example/jwks');
  assert.equal(jwks.audience, 'pop3');
  assert.equal(oauthOf({ jwksFile: 'jwks.json', audience: 'pop3' })?.jwksFile, 'jwks.json');
  refuses({ jwksFile: 'jwks.json' }, 'audience is required');
});

test('[oauth] mistakes are ConfigErrors that say what is wrong', () => {
  refuses('https://idp.example', '[oauth] must be a table');
  refuses({}, 'exactly one of introspectionUrl, jwksUrl and jwksFile');
  refuses({ introspectionUrl: 'https://a/', jwksFile: 'j', audience: 'x' }, 'exactly one');
  refuses({ introspectionUrl: 'https://a/', clienId: 'typo' }, 'unknown setting "clienId" in [oauth]');
  refuses({ introspectionUrl: 'https://a/', clientSecret: 's' }, 'needs clientId');
  refuses(
    { introspectionUrl: 'https://a/', clientId: 'c', clientSecret: 's', clientSecretFile: 'f' },
    'exclude',
  );
  refuses({ jwksFile: 'j', audience: 'x', clientId: 'c' }, 'go with introspectionUrl');
  refuses({ introspectionUrl: 'ftp://a/' }, 'http or https');
  refuses({ introspectionUrl: 'not a url' }, 'not a URL');
  refuses({ jwksUrl: 'file:///etc/jwks', audience: 'x' }, 'http or https');
  refuses({ introspectionUrl: '' }, 'introspectionUrl must be a non-empty string');
  refuses({ introspectionUrl: 'https://a/', timeoutMs: 0 }, 'timeoutMs');
});
