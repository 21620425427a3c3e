import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatConnectionString, parseConnectionString, redact, secretsOf } from './connection-string.js';
import { SlurmkitError } from '../util/errors.js';

const KEY = Buffer.alloc(64, 7).toString('base64');

test('account key strings, with an endpoint or a suffix', () => {
  const local = formatConnectionString({ accountName: 'skabc', accountKey: KEY, blobEndpoint: 'http://10.0.0.2:10000/skabc' });
  assert.deepEqual(parseConnectionString(local, 'X'), { blobEndpoint: 'http://10.0.0.2:10000/skabc', accountName: 'skabc', auth: 'key' });
  const azure = `DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=${KEY};EndpointSuffix=core.windows.net`;
  assert.equal(parseConnectionString(azure, 'X').blobEndpoint, 'https://myacct.blob.core.windows.net');
});

test('SAS strings need an endpoint', () => {
  const sas = 'BlobEndpoint=https://myacct.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=abc%2Fdef';
  assert.deepEqual(parseConnectionString(sas, 'X'), { blobEndpoint: 'https://myacct.blob.core.windows.net', accountName: undefined, auth: 'sas' });
  assert.throws(() => parseConnectionString('SharedAccessSignature=sv=1&sig=x', 'X'), SlurmkitError);
});

test('a malformed string is SPEC_INVALID naming its source and keys, never its values', () => {
  for (const bad of ['garbage', `AccountName=Bad_Acct;AccountKey=${KEY}`, 'AccountName=acct;AccountKey=not*base64', 'UseDevelopmentStorage=true', `AccountName=acct;AccountKey=${KEY};BlobEndpoint=ftp://x`]) {
    assert.throws(
      () => parseConnectionString(bad, 'AZURE_STORAGE_CONNECTION_STRING'),
      (e: unknown) => {
        assert.ok(e instanceof SlurmkitError && e.code === 'SPEC_INVALID');
        const shown = [e.message, e.hint, ...e.details].join('\n');
        assert.match(shown, /AZURE_STORAGE_CONNECTION_STRING/);
        assert.ok(!shown.includes('garbage') && !shown.includes('not*base64') && !shown.includes('Bad_Acct') && !shown.includes(KEY), shown);
        return true;
      },
      bad,
    );
  }
});

test('redact removes keys, SAS tokens and URL queries', () => {
  const cs = `AccountName=a1c;AccountKey=${KEY};SharedAccessSignature=sv=1&sig=SECRETSIG`;
  const text = `failed with ${KEY} at https://a.blob.core.windows.net/c/b?sv=1&sig=SECRETSIG and sv=1&sig=SECRETSIG`;
  const out = redact(text, secretsOf(cs));
  assert.ok(!out.includes(KEY) && !out.includes('SECRETSIG'), out);
  assert.match(out, /https:\/\/a\.blob\.core\.windows\.net\/c\/b\?\*\*\*/);
});
