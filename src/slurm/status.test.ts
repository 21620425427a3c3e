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

test("a node's reason is read when Slurm gives one, and none is no reason", () => {
  assert.deepEqual(parseSinfoNodes('c1|down*|Not responding\nc2|idle|none\nc3|drained|maint: disk | swap\n'), [
    { name: 'c1', state: 'down', notResponding: true, reason: 'Not responding' },
    { name: 'c2', state: 'idle', notResponding: false },
    { name: 'c3', state: 'drained', notResponding: false, reason: 'maint: disk | swap' },
  ]);
});
