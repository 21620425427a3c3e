/**
 * Built-in cluster templates: commented YAML specs in src/spec/templates/. They are read from
 * the source tree at run time (dist/spec/ -> ../../src/spec/templates/), so the build never
 * has to copy them and `slurmkit init` writes out exactly what is in the repository.
 */
import { readdir, readFile } from 'node:fs/promises';
import { isScalar, parseDocument } from 'yaml';
import { SlurmkitError } from '../util/errors.js';
import { applyOverrides, parseYaml, resolveSpec, type SpecOverrides } from './load.js';
import type { ClusterConfig } from './types.js';

const TEMPLATE_DIR = new URL('../../src/spec/templates/', import.meta.url);

export interface TemplateInfo {
  name: string;
  /** From the template's first line, `# description: ...`. */
  description: string;
}

export async function listTemplates(): Promise<TemplateInfo[]> {
  const files = (await readdir(TEMPLATE_DIR)).filter((f) => f.endsWith('.yaml')).sort();
  return Promise.all(
    files.map(async (file) => {
      const text = await readFile(new URL(file, TEMPLATE_DIR), 'utf8');
      const description = /^#\s*description:\s*(.*)$/m.exec(text.split('\n', 1)[0] ?? '')?.[1]?.trim() ?? '';
      return { name: file.slice(0, -'.yaml'.length), description };
    }),
  );
}

/**
 * The template's YAML text, comments included. With `overrides.name` the `name:` value is
 * replaced in place (comments kept), for `init --template T --name X`.
 */
export async function templateText(name: string, overrides: SpecOverrides = {}): Promise<string> {
  const names = (await listTemplates()).map((t) => t.name);
  // Only listed names reach the file system, so "../x" cannot escape the folder.
  if (!names.includes(name)) {
    throw new SlurmkitError('NOT_FOUND', `no template named "${name}"`, { hint: `available templates: ${names.join(', ')}` });
  }
  const text = await readFile(new URL(`${name}.yaml`, TEMPLATE_DIR), 'utf8');
  if (overrides.name === undefined) return text;
  // Splice the value into the original text: re-serialising the document would re-flow the comments.
  const node = parseDocument(text).get('name', true);
  const range = isScalar(node) ? node.range : undefined;
  if (!range) throw new SlurmkitError('INTERNAL', `template ${name} has no name: line`);
  const value = /^[a-z][a-z0-9-]*$/.test(overrides.name) ? overrides.name : JSON.stringify(overrides.name);
  return text.slice(0, range[0]) + value + text.slice(range[1]);
}

export async function loadTemplate(name: string, overrides: SpecOverrides = {}): Promise<ClusterConfig> {
  const source = `template ${name}`;
  return resolveSpec(applyOverrides(parseYaml(await templateText(name), source), overrides), source);
}
