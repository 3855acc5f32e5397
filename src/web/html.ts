const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** The one place text becomes markup; not exported, so a page cannot forget it by calling it by hand. */
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/** Markup that is already safe: produced by `html`, so it is not escaped again. */
export class SafeHtml {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = SafeHtml | string | number | false | null | undefined | readonly Value[];

function render(value: Value): string {
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  // `cond && html\`…\`` leaves nothing behind when cond is false.
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/**
 * A template that escapes every interpolated value unless it is itself
 * `html` (a fragment, or a list of them): escaping by default, so a value
 * that reaches a page cannot add markup by being forgotten (OWASP XSS
 * Prevention, rule 1). Used in attribute values too, always quoted.
 */
export function html(strings: TemplateStringsArray, ...values: Value[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new SafeHtml(out);
}

/** Fragments with `separator` (text, escaped like any value) between them. */
export function join(parts: readonly SafeHtml[], separator: string): SafeHtml {
  return new SafeHtml(parts.map((p) => p.text).join(escapeHtml(separator)));
}
