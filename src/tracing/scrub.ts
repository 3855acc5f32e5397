import type { Attributes, AttributeValue, Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace-base';

/**
 * The last door before spans leave the process. Our own spans set only
 * bounded, secret-free attributes; this catches what other code adds (the
 * fetch instrumentation records each outbound URL, and Kratos's
 * identity URLs carry the identity's id, a `sub`; Hydra's accept calls a
 * login_challenge, a provider callback a code and state):
 * - URL attributes keep scheme, host and path, with id-like path segments
 *   replaced by `{id}`; query values are dropped (names kept), so are
 *   credentials and fragments;
 * - attributes named like a secret or a person (token, secret, password,
 *   authorization, cookie, code, state, sub, enduser…) are dropped;
 * - any string (attributes, event attributes such as exception messages, span
 *   names) has JWTs, Hydra's tokens and URLs inside it scrubbed the same way.
 */
export class ScrubbingSpanProcessor implements SpanProcessor {
  constructor(private readonly next: SpanProcessor) {}

  onStart(span: Span, parentContext: Context): void {
    this.next.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    this.next.onEnd(scrubbedView(span));
  }

  forceFlush(): Promise<void> {
    return this.next.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.next.shutdown();
  }
}

/**
 * The ended span as exporters will read it, with name, attributes and events
 * scrubbed; everything else (ids, times, resource, spanContext()) is read
 * through to the original, which is never changed.
 */
export function scrubbedView(span: ReadableSpan): ReadableSpan {
  return Object.create(span, {
    name: { value: scrubText(span.name), enumerable: true },
    attributes: { value: scrubAttributes(span.attributes), enumerable: true },
    events: { value: span.events.map(scrubEvent), enumerable: true },
  }) as ReadableSpan;
}

const URL_KEYS = new Set(['url.full', 'url.original', 'url.path', 'url.query', 'http.url', 'http.target', 'http.route']);
// Whole words of a key ("http.request.header.authorization", "enduser.id", "oauth.code"), not substrings ("error.code" is not "code").
const SECRET_KEY = /(^|[._-])(token|access_token|refresh_token|id_token|secret|client_secret|password|passwd|authorization|cookie|set-cookie|code|state|challenge|verifier|assertion|sub|subject|enduser|credential|api_key|apikey|session_secret)([._-]|$)/i;
// Status codes are the answer's, never a secret: `…status_code` is kept whatever its prefix.
const ALLOWED_KEY = /(^error\.code|status_code)$/;

export function scrubAttributes(attributes: Attributes): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    if (SECRET_KEY.test(key) && !ALLOWED_KEY.test(key)) continue;
    out[key] = URL_KEYS.has(key) && typeof value === 'string' ? scrubUrlAttribute(key, value) : scrubValue(value);
  }
  return out;
}

function scrubEvent(event: TimedEvent): TimedEvent {
  return event.attributes ? { ...event, name: scrubText(event.name), attributes: scrubAttributes(event.attributes) } : { ...event, name: scrubText(event.name) };
}

function scrubValue(value: AttributeValue): AttributeValue {
  if (typeof value === 'string') return scrubText(value);
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? scrubText(v) : v)) as AttributeValue;
  return value;
}

/** url.path and url.query are parts of a URL, not URLs: scrubbed as such. */
function scrubUrlAttribute(key: string, value: string): string {
  if (key === 'url.query') return scrubQuery(value.replace(/^\?/, ''));
  if (key === 'url.path' || key === 'http.route' || (key === 'http.target' && value.startsWith('/'))) {
    const [path, query] = splitOnce(value, '?');
    return scrubPath(path) + (query === undefined ? '' : `?${scrubQuery(query)}`);
  }
  return scrubUrl(value);
}

const JWT = /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;
// Hydra's opaque tokens and codes (ory_at_, ory_rt_, ory_ac_, ory_pc_…), Kratos's session tokens (ory_st_).
const ORY_TOKEN = /\bory_[a-z]{2}_[A-Za-z0-9._~+/=-]+/g;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
const URL_IN_TEXT = /\bhttps?:\/\/[^\s"'<>]+/gi;

/** A free-form string with tokens and URLs in it made safe. */
export function scrubText(text: string): string {
  return text.replace(JWT, '[redacted]').replace(ORY_TOKEN, '[redacted]').replace(BEARER, '$1 [redacted]').replace(URL_IN_TEXT, (u) => scrubUrl(u));
}

/** scheme://host:port/path with id-like segments replaced, query values and credentials dropped. */
export function scrubUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '[unparsable url]';
  }
  const query = url.search ? `?${scrubQuery(url.search.slice(1))}` : '';
  return `${url.protocol}//${url.host}${scrubPath(url.pathname)}${query}`;
}

/** Names kept (they say which call it was), values never. */
function scrubQuery(query: string): string {
  return query
    .split('&')
    .filter(Boolean)
    .map((pair) => `${safeName(decodeSafely(splitOnce(pair, '=')[0]))}=_`)
    .join('&');
}

function scrubPath(path: string): string {
  return path
    .split('/')
    .map((segment) => (isIdLike(decodeSafely(segment)) ? '{id}' : segment))
    .join('/');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Segments that name someone or something rather than an endpoint: UUIDs
 * (Kratos identities, Hydra clients), numbers, anything with a digit past a
 * few characters, long or encoded ones, e-mail addresses. Endpoint names
 * (introspect, identities, openid-configuration, jwks.json) have none of these.
 */
export function isIdLike(segment: string): boolean {
  if (segment === '') return false;
  return UUID.test(segment) || /^\d+$/.test(segment) || (segment.length > 8 && /\d/.test(segment)) || segment.length > 40 || /[@%=~:+]/.test(segment);
}

const safeName = (name: string) => (/^[A-Za-z0-9_.-]{1,40}$/.test(name) ? name : '{name}');

function decodeSafely(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
