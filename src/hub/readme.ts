/**
 * README rendering that is safe to put in a page: markdown-it with raw HTML
 * off (every `<` of the source is escaped), links only to http(s), mailto
 * and relative addresses, images only from http(s), relative addresses and
 * `data:image/png|gif|jpeg|webp` (never svg: it can carry script), every
 * link with rel="nofollow noopener noreferrer". markdown-it's own
 * validateLink already refuses javascript:, vbscript:, file: and most data:
 * URLs; the allow-list here is stricter and checked after entity decoding.
 */
import { createRequire } from 'node:module';
import type { default as MarkdownItCallable, MarkdownIt } from 'markdown-it';

/** Longest README accepted (bytes of UTF-8). Docker Hub allows 25,000 characters; a README often carries tables and badges, so more. */
export const MAX_README_BYTES = 1024 * 1024;
/** Longest short description (characters), as Docker Hub's. */
export const MAX_DESCRIPTION_CHARS = 100;

const SAFE_IMAGE_DATA = /^data:image\/(png|gif|jpeg|webp);/i;

/** Whether `url` (as markdown-it normalized it) may be a link target or an image source. */
export function safeUrl(url: string, image: boolean): boolean {
  // Browsers ignore ASCII whitespace and control characters inside a scheme ("java\tscript:").
  // eslint-disable-next-line no-control-regex
  const compact = url.replace(/[\u0000-\u0020\u007f-\u009f]/g, '');
  let decoded: string;
  try {
    decoded = decodeURIComponent(compact);
  } catch {
    decoded = compact;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(decoded)?.[1]?.toLowerCase();
  if (scheme === undefined) return !/^[a-z][a-z0-9+.-]*%3a/i.test(compact);
  if (scheme === 'http' || scheme === 'https') return true;
  if (!image && scheme === 'mailto') return true;
  return image && scheme === 'data' && SAFE_IMAGE_DATA.test(decoded);
}

let md: MarkdownIt | undefined;

/**
 * The renderer, built on the first README rendered: markdown-it and its
 * dependencies cost tens of milliseconds to load, which start-up need not
 * pay for pages few requests ask for. Loaded with require (its CommonJS
 * build) so rendering stays synchronous.
 */
function renderer(): MarkdownIt {
  if (md) return md;
  const MarkdownItCtor = createRequire(import.meta.url)('markdown-it') as typeof MarkdownItCallable;
  const m = new MarkdownItCtor({ html: false, linkify: true, typographer: false });
  m.validateLink = (url: string) => safeUrl(url, false) || safeUrl(url, true);
  m.core.ruler.push('berth_safe_links', (state) => {
    const visit = (tokens: typeof state.tokens) => {
      for (const token of tokens) {
        if (token.type === 'link_open') {
          const href = String(token.attrGet('href') ?? '');
          if (!safeUrl(href, false)) token.attrSet('href', '#');
          token.attrSet('rel', 'nofollow noopener noreferrer');
        } else if (token.type === 'image') {
          const src = String(token.attrGet('src') ?? '');
          if (!safeUrl(src, true)) token.attrSet('src', '');
        }
        if (token.children) visit(token.children);
      }
    };
    visit(state.tokens);
  });
  md = m;
  return m;
}

/**
 * The README as HTML without script, event handlers or script URLs. A
 * script URL left as text (a refused link) is harmless, but its colon is
 * written as an entity anyway, so no filter downstream mistakes it for one.
 */
export function renderReadme(markdown: string): string {
  return renderer().render(markdown).replace(/(java|vb)script:/gi, '$1script&#58;');
}
