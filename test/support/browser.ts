import { parse, type HTMLElement } from 'node-html-parser';

/**
 * A minimal browser for the OAuth redirects: a cookie jar (cookies are per
 * host, not per port, as in real browsers), manual redirect following, and
 * form submission that sends what a browser would: hidden fields, typed
 * values, checked boxes and the clicked button.
 */
export class Browser {
  private readonly cookies = new Map<string, Map<string, string>>();
  /** Every URL visited, for assertions and failure messages. */
  readonly history: string[] = [];

  /** GET `url` and follow redirects until a page answers or `stopAt` matches the target. */
  async open(url: string, stopAt?: (u: URL) => boolean): Promise<Page> {
    return this.request('GET', url, undefined, stopAt);
  }

  async request(method: string, url: string, body?: URLSearchParams, stopAt?: (u: URL) => boolean): Promise<Page> {
    let current = new URL(url);
    let verb = method;
    let payload = body;
    for (let hops = 0; hops < 20; hops++) {
      this.history.push(`${verb} ${current.href}`);
      if (stopAt?.(current)) return new Page(current, 0, '', this);
      const headers: Record<string, string> = { accept: 'text/html' };
      const jar = this.cookies.get(current.hostname);
      if (jar?.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      if (payload) headers['content-type'] = 'application/x-www-form-urlencoded';
      const res = await fetch(current, { method: verb, headers, body: payload?.toString(), redirect: 'manual' });
      this.store(current.hostname, res.headers.getSetCookie());
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current);
        verb = 'GET';
        payload = undefined;
        await res.arrayBuffer();
        continue;
      }
      return new Page(current, res.status, await res.text(), this);
    }
    throw new Error(`too many redirects:\n${this.history.join('\n')}`);
  }

  private store(host: string, setCookies: string[]) {
    const jar = this.cookies.get(host) ?? new Map<string, string>();
    for (const line of setCookies) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      if (eq > 0) jar.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    this.cookies.set(host, jar);
  }
}

export class Page {
  readonly doc: HTMLElement;
  constructor(
    readonly url: URL,
    readonly status: number,
    readonly html: string,
    private readonly browser: Browser,
  ) {
    this.doc = parse(html);
  }

  text(): string {
    return this.doc.textContent.replace(/\s+/g, ' ').trim();
  }

  /** The input labelled `label` (via <label for>), as a person finds it. */
  fieldByLabel(label: string): HTMLElement {
    const l = this.doc.querySelectorAll('label').find((x) => x.textContent.trim() === label);
    const id = l?.getAttribute('for');
    const input = id ? this.doc.querySelector(`#${id}`) : undefined;
    if (!input) throw new Error(`no field labelled "${label}" on ${this.url.href}:\n${this.text()}`);
    return input;
  }

  /**
   * Fill the form holding the button named `buttonText` and submit it.
   * `fill` maps a field's label to a value; `uncheck` lists checkbox values to clear.
   */
  async submit(
    buttonText: string,
    opts: { fill?: Record<string, string>; uncheck?: string[]; check?: string[]; buttonValue?: string } = {},
    stopAt?: (u: URL) => boolean,
  ): Promise<Page> {
    // buttonValue: which of several same-titled buttons (e.g. Kratos's "Save" per settings section).
    const button = this.doc
      .querySelectorAll('button')
      .find((b) => b.textContent.trim() === buttonText && (opts.buttonValue === undefined || b.getAttribute('value') === opts.buttonValue));
    if (!button) throw new Error(`no "${buttonText}" button on ${this.url.href}:\n${this.text()}`);
    let form: HTMLElement | null = button.parentNode;
    while (form && form.tagName !== 'FORM') form = form.parentNode;
    if (!form) throw new Error(`"${buttonText}" is not inside a form`);
    const values = new Map<HTMLElement, string>();
    for (const [label, value] of Object.entries(opts.fill ?? {})) values.set(this.fieldByLabel(label), value);
    const ticked = new Set((opts.check ?? []).map((label) => this.fieldByLabel(label)));
    const body = new URLSearchParams();
    for (const input of form.querySelectorAll('input')) {
      const name = input.getAttribute('name');
      if (!name || input.hasAttribute('disabled')) continue;
      const type = (input.getAttribute('type') ?? 'text').toLowerCase();
      const value = values.get(input) ?? input.getAttribute('value') ?? (type === 'checkbox' ? 'on' : '');
      if (type === 'checkbox' || type === 'radio') {
        const on = ticked.has(input) || (input.hasAttribute('checked') && !opts.uncheck?.includes(value));
        if (!on) continue;
      }
      body.append(name, value);
    }
    const name = button.getAttribute('name');
    if (name) body.append(name, button.getAttribute('value') ?? '');
    const method = (form.getAttribute('method') ?? 'GET').toUpperCase();
    const action = new URL(form.getAttribute('action') ?? this.url.href, this.url);
    return this.browser.request(method, action.href, body, stopAt);
  }
}
