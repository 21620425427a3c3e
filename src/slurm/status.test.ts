import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isReady, parseSinfoNodes } from './status.js';

test('parseSinfoNodes dedupes nodes listed under several partitions and reads the not-responding mark', () => {
  const nodes = parseSinfoNodes('c1|idle\nc2|down*\nc1|idle\nc3|allocated\n\n');
  assert.deepEqual(nodes, [
    { name: 'c1', state: 'idle', notResponding: false },
    { name: 'c2', state: 'down', notResponding: true },
    { name: 'c3', state: 'allocated', notResponding: false },
  ]);
  assert.deepEqual(nodes.map(isReady), [true, false, false]);
});

test('an idle node that stopped responding is not ready', () => {
  assert.equal(isReady(parseSinfoNodes('c1|idle*')[0]!), false);
});
