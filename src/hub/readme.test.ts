/**
 * README rendering against a corpus of hostile Markdown and HTML, and a
 * generated fuzz corpus mixing its pieces: the output must hold no script
 * element, no event-handler attribute, no script or unsafe data URL in any
 * attribute, and every link must carry rel="nofollow noopener noreferrer".
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderReadme, safeUrl } from './readme.js';

const HOSTILE = [
  '<script>alert(1)</script>',
  '<SCRIPT SRC=//evil/x.js></SCRIPT>',
  '<img src=x onerror=alert(1)>',
  '<svg onload=alert(1)>',
  '<a href="javascript:alert(1)">x</a>',
  '[x](javascript:alert(1))',
  '[x](JaVaScRiPt:alert(1))',
  '[x](java\tscript:alert(1))',
  '[x](&#106;avascript:alert(1))',
  '[x](&#x6A;avascript&#x3A;alert(1))',
  '[x](javascript%3Aalert(1))',
  '[x](  javascript:alert(1))',
  '[x](<javascript:alert(1)>)',
  '[x](vbscript:msgbox(1))',
  '[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '[x](file:///etc/passwd)',
  '![y](javascript:alert(1))',
  '![y](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)',
  '![y](data:text/html,<script>alert(1)</script>)',
  '[ref]: javascript:alert(1)\n\n[ref]',
  '<javascript:alert(1)>',
  'javascript:alert(1)',
  '<iframe src="https://evil"></iframe>',
  '<div style="background:url(javascript:alert(1))">x</div>',
  '<a href="x" onclick="alert(1)">x</a>',
  '<<script>script>alert(1)<</script>/script>',
  '```html\n<script>alert(1)</script>\n```',
  '`<img src=x onerror=alert(1)>`',
  '[x](https://ok.example/" onmouseover="alert(1))',
  '[x](https://ok.example/?q="><script>alert(1)</script>)',
  '![a" onerror="alert(1)](https://ok.example/i.png)',
  '<style>*{}</style><object data="x"></object><embed src="x">',
  '<form action="javascript:alert(1)"><button>x</button></form>',
  '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
  '[x](//evil.example/path)',
];

/** Every tag of the output with its attributes. */
function tags(html: string): { name: string; attrs: Map<string, string> }[] {
  const out: { name: string; attrs: Map<string, string> }[] = [];
  for (const m of html.matchAll(/<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>]+(?:="[^"]*")?)*)\s*\/?>/g)) {
    const attrs = new Map<string, string>();
    for (const a of m[2]!.matchAll(/\s+([^\s=>]+)(?:="([^"]*)")?/g)) attrs.set(a[1]!.toLowerCase(), a[2] ?? '');
    out.push({ name: m[1]!.toLowerCase(), attrs });
  }
  return out;
}

const decode = (v: string) =>
  v
    .replace(/&#x([0-9a-f]+);?/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);?/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');

function assertSafe(source: string): void {
  const html = renderReadme(source);
  const where = `source ${JSON.stringify(source)} rendered ${JSON.stringify(html)}`;
  assert.doesNotMatch(html, /<script/i, where);
  assert.doesNotMatch(html, /javascript:|vbscript:/i, where);
  // No raw tag other than what Markdown makes.
  const allowed = new Set(['p', 'a', 'img', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'em', 'strong', 'code', 'pre', 'ul', 'ol', 'li', 'blockquote', 'hr', 'br', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 's']);
  for (const t of tags(html)) {
    assert.ok(allowed.has(t.name), `tag <${t.name}> in ${where}`);
    for (const [name, value] of t.attrs) {
      assert.ok(!name.startsWith('on'), `event handler ${name} in ${where}`);
      assert.ok(['href', 'src', 'alt', 'rel', 'title', 'class', 'start', 'style'].includes(name), `attribute ${name} in ${where}`);
      if (name === 'style') assert.match(value, /^text-align:(left|right|center)$/, where);
      if (name === 'href') {
        assert.ok(safeUrl(decode(value), false), `href ${value} in ${where}`);
        assert.equal(t.attrs.get('rel'), 'nofollow noopener noreferrer', where);
      }
      if (name === 'src' && value !== '') assert.ok(/^(https?:|data:image\/(png|gif|jpeg|webp);|[^:]*$)/i.test(decode(value)), `src ${value} in ${where}`);
    }
  }
}

describe('README rendering', () => {
  it('renders Markdown, links with rel=nofollow noopener', () => {
    const html = renderReadme('# Title\n\n*em* [site](https://example.com) [rel](docs/x.md) [mail](mailto:a@b.c)\n\n![i](https://example.com/i.png)');
    assert.match(html, /<h1>Title<\/h1>/);
    assert.match(html, /<a href="https:\/\/example.com" rel="nofollow noopener noreferrer">site<\/a>/);
    assert.match(html, /<a href="docs\/x.md" rel="nofollow noopener noreferrer">rel<\/a>/);
    assert.match(html, /<a href="mailto:a@b.c" rel="nofollow noopener noreferrer">mail<\/a>/);
    assert.match(html, /<img src="https:\/\/example.com\/i.png" alt="i">/);
  });

  it('allows raster data: images, refuses svg and html data URLs', () => {
    assert.match(renderReadme('![p](data:image/png;base64,iVBORw0KGgo=)'), /src="data:image\/png;base64,iVBORw0KGgo="/);
    assert.doesNotMatch(renderReadme('![p](data:image/svg+xml;base64,PHN2Zz4=)'), /src="data:/);
    assert.doesNotMatch(renderReadme('[p](data:image/png;base64,iVBORw0KGgo=)'), /href="data:/);
  });

  it('keeps every hostile sample inert', () => {
    for (const s of HOSTILE) assertSafe(s);
  });

  it('keeps a generated fuzz corpus inert', () => {
    // Deterministic: a fixed linear congruential sequence picks and splices pieces.
    let seed = 12345;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pieces = [...HOSTILE, '[', ']', '(', ')', '<', '>', '"', "'", '!', '\n', '\n\n', '`', '*', '&#', ';', ':', 'javascript', 'on', 'error=', ' ', '\t', '|a|b|\n|-|-|\n|1|2|', '> ', '- '];
    for (let i = 0; i < 3000; i++) {
      let s = '';
      const n = 1 + next(8);
      for (let j = 0; j < n; j++) s += pieces[next(pieces.length)];
      assertSafe(s);
    }
  });
});
