/**
 * Words schema problems as `<path>: <what is wrong> — <how to fix>`. The value in the spec,
 * not zod's message, drives the wording, so the reader sees what they wrote.
 */
import type * as z from 'zod';
import { FIELD_HELP, KEY_ALIASES, KNOWN_KEYS, MAX_ID, MIN_ID, UNIX_NAME } from './schema.js';

export type Path = readonly PropertyKey[];

/** One problem, worded as a detail line. */
export function problem(path: Path, what: string, fix: string): string {
  return `${formatPath(path)}: ${oneLine(what)} — ${oneLine(fix)}`;
}

/**
 * Messages quote what the spec says, and a spec can say anything: a newline or an escape
 * sequence in a value must not start a line of its own (or recolour the terminal) when the
 * CLI prints the problem. Invisible characters are written as JSON escapes instead.
 */
export function oneLine(text: string): string {
  return text.replace(/[\p{C}\u2028\u2029]/gu, (ch) => {
    const json = JSON.stringify(ch).slice(1, -1);
    if (json.startsWith('\\')) return json;
    const code = ch.codePointAt(0)!.toString(16);
    return code.length > 4 ? `\\u{${code}}` : `\\u${code.padStart(4, '0')}`;
  });
}

/** ['nodes', 0, 'count'] -> "nodes[0].count"; the whole document is "spec". */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(seg))) out += out ? `.${String(seg)}` : String(seg);
    else out += `[${oneLine(JSON.stringify(String(seg)))}]`;
  }
  return out || 'spec';
}

/** The place a path belongs to, as KNOWN_KEYS and FIELD_HELP key it: "nodes[].count". */
function placeOf(path: Path): string {
  return path.map((s) => (typeof s === 'number' ? '[]' : `.${String(s)}`)).join('').replace(/^\./, '');
}

/** The help of the nearest place that has one. */
export function helpFor(path: Path): string {
  for (let n = path.length; n >= 0; n--) {
    const help = FIELD_HELP[placeOf(path.slice(0, n))];
    if (help) return help;
  }
  return FIELD_HELP['']!;
}

export function valueAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
  return String(v);
}

const EXPECTED: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

/** Turns zod issues into detail lines; `root` is the raw spec, for the values that were written. */
export function issueLines(issues: readonly z.core.$ZodIssue[], root: unknown, base: Path = []): string[] {
  return issues.flatMap((issue) => linesFor(issue, root, [...base, ...issue.path]));
}

function linesFor(issue: z.core.$ZodIssue, root: unknown, path: Path): string[] {
  const v = valueAt(root, path);
  const help = helpFor(path);
  switch (issue.code) {
    case 'invalid_type':
      if (v === undefined) return [problem(path, 'is missing', help)];
      return [problem(path, `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${describe(v)}`, typeFix(path, v, issue.expected, help))];
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = Number(small ? (issue as z.core.$ZodIssueTooSmall).minimum : (issue as z.core.$ZodIssueTooBig).maximum);
      if (issue.origin === 'array') {
        const what = small ? (limit === 1 ? 'is empty' : `must list at least ${limit} items`) : `must list at most ${limit} items`;
        return [problem(path, what, help)];
      }
      if (issue.origin === 'string') return [problem(path, small ? 'is empty' : `is longer than ${limit} characters`, help)];
      const key = path[path.length - 1];
      if ((key === 'uid' || key === 'gid') && typeof v === 'number') return [problem(path, idRangeWhat(v), help)];
      return [problem(path, `must be ${small ? 'at least' : 'at most'} ${limit}, got ${describe(v)}`, rangeFix(path, v, help))];
    }
    case 'invalid_format':
      if (path[0] === 'users' && typeof v === 'string' && v !== v.toLowerCase() && UNIX_NAME.test(v.toLowerCase())) {
        return [problem(path, `${describe(v)} is not allowed here`, `user and group names are lowercase: write ${v.toLowerCase()}`)];
      }
      return [problem(path, `${describe(v)} is not allowed here`, help)];
    case 'invalid_value':
      return [problem(path, `got ${describe(v)}, expected ${issue.values.map((x) => JSON.stringify(x)).join(' or ')}`, help)];
    case 'unrecognized_keys':
      return issue.keys.map((key) => unknownKey(path, key, valueAt(v, [key])));
    case 'invalid_key':
      return [problem(path, `${JSON.stringify(String(path[path.length - 1]))} is not a valid key`, 'keys are a letter followed by letters and digits, as in slurm.conf')];
    case 'invalid_union': {
      // When every form but one fails on the value's type, the remaining form is what was meant.
      const meant = issue.errors.filter((branch) => !branch.some((i) => i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value')));
      const only = meant.length === 1 ? meant[0] : undefined;
      if (only) return issueLines(only, root, path);
      return [problem(path, `got ${describe(v)}, which is not one of the accepted forms`, help)];
    }
    default:
      return [problem(path, issue.message, help)];
  }
}

/** Ids outside the human range belong to the host's own accounts, which the cluster keeps. */
function idRangeWhat(id: number): string {
  if (id < 0) return `${id} is negative`;
  if (id === 0) return '0 is root';
  if (id < MIN_ID) return `${id} is in the system range (below ${MIN_ID}), used by the host's own accounts`;
  if (id === 65534) return '65534 is nobody/nogroup';
  return `${id} is above ${MAX_ID}: ids from 60000 up belong to system packages (e.g. slurm) and nobody`;
}

function typeFix(path: Path, v: unknown, expected: string, help: string): string {
  const key = String(path[path.length - 1]);
  if (key === 'memoryMiB' && typeof v === 'string') {
    const mib = sizeToMiB(v);
    if (mib !== undefined) return `memoryMiB is a whole number of MiB: write memoryMiB: ${mib} for ${v.trim()}`;
  }
  if ((expected === 'number' || expected === 'int') && typeof v === 'string' && /^\s*\d+\s*$/.test(v)) {
    return `write the number without quotes: ${key}: ${v.trim()}`;
  }
  if (expected === 'int' && typeof v === 'number') return `${help} (no fractions)`;
  if (expected === 'boolean' && typeof v === 'string' && /^(yes|no|y|n|on|off)$/i.test(v)) {
    return `write ${key}: ${/^(yes|y|on)$/i.test(v)} (YAML 1.2 reads ${v} as text)`;
  }
  return help;
}

function rangeFix(path: Path, v: unknown, help: string): string {
  // "memoryMiB: 2" was almost certainly meant in GiB.
  if (path[path.length - 1] === 'memoryMiB' && typeof v === 'number' && v > 0 && v < 64) {
    return `${help}; for ${v} GiB write memoryMiB: ${v * 1024}`;
  }
  return help;
}

/** "2G", "512 MiB", "1.5GB" -> MiB; binary units whatever the spelling, as Slurm reads them. */
export function sizeToMiB(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT])?(?:i?B)?\s*$/i.exec(text);
  if (!m) return undefined;
  const factor = { K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 }[(m[2] ?? 'M').toUpperCase() as 'K' | 'M' | 'G' | 'T'];
  const mib = Number(m[1]) * factor;
  return Number.isInteger(mib) && mib > 0 ? mib : undefined;
}

function unknownKey(objectPath: Path, key: string, value: unknown): string {
  const place = placeOf(objectPath);
  const known = KNOWN_KEYS[place] ?? [];
  const path = [...objectPath, key];
  const guess = closestKey(key, known);
  if (guess) {
    let fix = `did you mean ${guess}?`;
    if (guess === 'memoryMiB') {
      const mib = typeof value === 'string' ? sizeToMiB(value) : undefined;
      fix += mib !== undefined ? ` memoryMiB is a whole number of MiB: write memoryMiB: ${mib} for ${String(value).trim()}` : ` ${FIELD_HELP['nodes[].memoryMiB']}`;
    }
    return problem(path, `unknown key ${JSON.stringify(key)}`, fix);
  }
  const home = Object.entries(KNOWN_KEYS).find(([p, keys]) => p !== place && keys.includes(key));
  if (home) return problem(path, `unknown key ${JSON.stringify(key)} here`, `${key} belongs under ${home[0] || 'the top level'}`);
  return problem(path, `unknown key ${JSON.stringify(key)}`, known.length ? `known keys here: ${known.join(', ')}` : helpFor(objectPath));
}

/** The known key the user most likely meant: same letters ignoring case, an alias, or a small typo. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase().replace(/[_-]/g, '');
  const exact = known.find((k) => k.toLowerCase() === lower);
  if (exact) return exact;
  const alias = KEY_ALIASES[lower];
  if (alias && known.includes(alias)) return alias;
  const allowed = Math.max(1, Math.floor(key.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d <= allowed && d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
