import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import GithubSlugger from 'github-slugger';
import { marked, type Token, type Tokens } from 'marked';
import { describe, expect, it } from 'vitest';

/**
 * The README and docs/ point at files, headings and npm scripts that other
 * work moves and renames; these tests fail on the first one that no longer
 * exists, naming every broken reference with its file and line. Markdown is
 * read with marked's lexer and anchors made with github-slugger (GitHub's own
 * heading slugs).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** README.md and every docs/*.md, as paths relative to the repository root. */
function documents(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs];
}

/** Every token of a document, depth first (inline tokens, list items, table cells included). */
function* walk(tokens: Token[]): Generator<Token> {
  for (const token of tokens) {
    yield token;
    const t = token as Token & { tokens?: Token[]; items?: Token[]; header?: { tokens: Token[] }[]; rows?: { tokens: Token[] }[][] };
    if (t.tokens) yield* walk(t.tokens);
    if (t.items) yield* walk(t.items);
    for (const cell of [...(t.header ?? []), ...(t.rows ?? []).flat()]) yield* walk(cell.tokens);
  }
}

/** A heading's text as GitHub renders it (code without backticks, links as their text). */
const plainText = (tokens: Token[]): string =>
  tokens.map((t) => ('tokens' in t && t.tokens ? plainText(t.tokens) : t.type === 'codespan' || t.type === 'text' || t.type === 'escape' ? (t as Tokens.Text).text : '')).join('');

interface Reference {
  file: string;
  line: number;
  /** The link as written, for the failure message. */
  written: string;
  target: string;
}

const HAS_SCHEME = /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i;
// marked leaves HTML as raw text; the docs use <img src> and <a href>, read here by attribute.
const HTML_ATTRIBUTE = /\b(?:src|href)="([^"]+)"/g;

/** The line of the first place `raw` is written in `text` (marked keeps no positions). */
const lineOf = (text: string, raw: string) => (text.indexOf(raw) < 0 ? 0 : text.slice(0, text.indexOf(raw)).split('\n').length);

/** Every relative link and image of a document (external URLs left out). */
function relativeReferences(file: string, text: string): Reference[] {
  const refs: Reference[] = [];
  const add = (raw: string, target: string) => {
    if (!HAS_SCHEME.test(target)) refs.push({ file, line: lineOf(text, raw), written: raw.replace(/\s+/g, ' '), target });
  };
  for (const token of walk(marked.lexer(text))) {
    if (token.type === 'link' || token.type === 'image') add(token.raw, (token as Tokens.Link).href);
    if (token.type === 'html') for (const m of token.raw.matchAll(HTML_ATTRIBUTE)) add(m[0], m[1]!);
  }
  return refs;
}

/** Every anchor a document offers: its headings' GitHub slugs (a repeated one gets -1, -2 …) and HTML ids. */
function anchorsOf(text: string): Set<string> {
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  for (const token of walk(marked.lexer(text))) {
    if (token.type === 'heading') anchors.add(slugger.slug(plainText((token as Tokens.Heading).tokens)));
  }
  for (const m of text.matchAll(/<a\s[^>]*(?:name|id)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

/** The file a link's path names (a leading `/` is the repository root, as on GitHub). */
function resolveTarget(ref: Reference): { path: string; anchor: string | undefined } {
  const hash = ref.target.indexOf('#');
  const rawPath = hash === -1 ? ref.target : ref.target.slice(0, hash);
  const anchor = hash === -1 ? undefined : decodeURIComponent(ref.target.slice(hash + 1));
  const path = decodeURIComponent(rawPath);
  if (path === '') return { path: join(ROOT, ref.file), anchor };
  const base = path.startsWith('/') ? ROOT : dirname(join(ROOT, ref.file));
  return { path: resolve(base, path.replace(/^\/+/, '')), anchor };
}

const describeRef = (ref: Reference, problem: string) => `${ref.file}:${ref.line}: ${ref.written} — ${problem}`;

describe('links and scripts named in README.md and docs/*.md', () => {
  const files = documents();
  const texts = new Map(files.map((file) => [file, readFileSync(join(ROOT, file), 'utf8')]));

  it('reads README.md and at least one file in docs/', () => {
    expect(files[0]).toBe('README.md');
    expect(files.length).toBeGreaterThan(1);
  });

  it('every relative link and image names a file or directory that exists in the repo', () => {
    const broken: string[] = [];
    for (const [file, text] of texts) {
      for (const ref of relativeReferences(file, text)) {
        const { path } = resolveTarget(ref);
        if (relative(ROOT, path).startsWith('..')) broken.push(describeRef(ref, 'points outside the repository'));
        else if (!existsSync(path)) broken.push(describeRef(ref, `no such file: ${relative(ROOT, path)}`));
      }
    }
    expect(broken, `broken links:\n${broken.join('\n')}`).toEqual([]);
  });

  it('every #anchor names a heading of its target markdown file (GitHub slug rules)', () => {
    const broken: string[] = [];
    const anchorCache = new Map<string, Set<string>>();
    const anchorsAt = (path: string) => {
      if (!anchorCache.has(path)) anchorCache.set(path, anchorsOf(readFileSync(path, 'utf8')));
      return anchorCache.get(path)!;
    };
    for (const [file, text] of texts) {
      for (const ref of relativeReferences(file, text)) {
        const resolved = resolveTarget(ref);
        if (resolved.anchor === undefined || !existsSync(resolved.path)) continue; // missing files: the test above
        // A directory's anchors are those of the README GitHub shows for it.
        const path = statSync(resolved.path).isDirectory() ? join(resolved.path, 'README.md') : resolved.path;
        if (!path.endsWith('.md')) {
          broken.push(describeRef(ref, `an anchor into ${relative(ROOT, path)}, which is not markdown`));
        } else if (!existsSync(path) || !anchorsAt(path).has(resolved.anchor)) {
          broken.push(describeRef(ref, `no heading "#${resolved.anchor}" in ${relative(ROOT, path)}`));
        }
      }
    }
    expect(broken, `broken anchors:\n${broken.join('\n')}`).toEqual([]);
  });

  it('every `npm run <name>` named (in prose or code) is a script in package.json', () => {
    const scripts = Object.keys(
      (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {},
    );
    const missing: string[] = [];
    for (const [file, text] of texts) {
      // `npm test`, `npm start` and `npm install` are npm's own commands: only `npm run` names a script.
      for (const m of text.matchAll(/\bnpm run(?:-script)?\s+([^\s`'"|;&)<>]+)/g)) {
        const name = m[1]!;
        if (!scripts.includes(name)) missing.push(`${file}:${text.slice(0, m.index).split('\n').length}: npm run ${name} — not a script in package.json`);
      }
    }
    expect(missing, `missing scripts:\n${missing.join('\n')}`).toEqual([]);
  });
});

describe('the checker itself', () => {
  it('finds links in tables, lists and images, and not in code', () => {
    const text = '| a |\n|---|\n| [t](docs/x.md) |\n\n- [l](y.md#h)\n\n![i](z.png)\n\n`[c](no.md)`\n\n```\n[d](no2.md)\n```\n';
    expect(relativeReferences('f.md', text).map((r) => r.target)).toEqual(['docs/x.md', 'y.md#h', 'z.png']);
  });

  it('gives headings GitHub’s anchors, a repeated one numbered', () => {
    const anchors = anchorsOf('## Notes\n### Notes\n## `state` and [links](x.md)\n## The review of 2026-12 (issue 26): what each measure defends\n');
    expect([...anchors]).toEqual(['notes', 'notes-1', 'state-and-links', 'the-review-of-2026-12-issue-26-what-each-measure-defends']);
  });
});
