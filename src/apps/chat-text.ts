/**
 * What the chat lets through: relayed text made safe for terminals and the page, nicknames kept to
 * sane characters, and a confusable skeleton (after Unicode UTS #39) to tell names apart.
 *
 * Server notices are lines that start with "* "; user lines start with "name: ", and a name is
 * letters, marks, digits and _ . - only. So once user text can neither end the line (newlines,
 * U+2028/2029), move the cursor (ESC, CR, backspace), nor reorder what is shown (bidi controls),
 * no user text can make a line that looks like a notice.
 */

/**
 * C0 and C1 controls, DEL, and format characters (bidi embeddings, overrides and isolates, zero
 * width spaces, BOM, tags). ZWJ and ZWNJ stay: emoji sequences and some scripts need them, and
 * they move nothing. Blank-looking letters (Hangul fillers, braille blank) count as spaces.
 */
const CONTROLS = /[\p{Cc}\p{Cf}]/gu;
const KEPT_FORMAT = new Set(['\u200c', '\u200d']);
const BLANKS = /[\s\u115f\u1160\u2800\u3164\uffa0]+/gu;
const UNCLEAN_ASCII = /[^\x21-\x7e ]| {2}/;
/** More than this many combining marks on one character only pile up over the lines around it. */
const MARK_PILE = /(\p{M}{4})\p{M}+/gu;

/** Relayed text as one safe line: controls removed, every run of blanks one space, trimmed. */
export function cleanText(text: string): string {
  // Most lines are printable ASCII with single spaces: nothing to do (one scan, no copies).
  if (!UNCLEAN_ASCII.test(text)) return text.trim();
  return text
    .replace(CONTROLS, (c) => (KEPT_FORMAT.has(c) ? c : c === '\t' || c === '\n' || c === '\r' ? ' ' : ''))
    .replace(MARK_PILE, '$1')
    .replace(BLANKS, ' ')
    .trim();
}

export const NICK_MAX = 24;
/** Letters, combining marks, decimal digits and _ . -; starting with a letter or digit. */
const NICK = /^[\p{L}\p{Nd}][\p{L}\p{M}\p{Nd}_.-]*$/u;
/** Scripts whose letters pass for each other; a name may use one of them, not two. */
const LOOKALIKE_SCRIPTS = [/\p{Script=Latin}/u, /\p{Script=Cyrillic}/u, /\p{Script=Greek}/u, /\p{Script=Armenian}/u, /\p{Script=Cherokee}/u];

/** The name to use for `wanted` (its NFKC form), or why it is refused. */
export function checkNick(wanted: string): { name: string } | { error: string } {
  const name = wanted.normalize('NFKC');
  const length = [...name].length;
  if (length < 1 || length > NICK_MAX || !NICK.test(name)) {
    return { error: `usage: /nick NAME (1-${NICK_MAX} letters, digits, _ . -; starting with a letter or digit)` };
  }
  // Hangul fillers and the like are letters, and invisible.
  if (IGNORABLE_ONE.test(name)) return { error: 'names cannot hold invisible characters' };
  if (LOOKALIKE_SCRIPTS.filter((re) => re.test(name)).length > 1) return { error: `the name ${name} mixes scripts (Latin, Cyrillic, Greek...)` };
  // Guest names are the server's (guest<tag><n>): no nickname may look like one.
  if (skeleton(name).startsWith(GUEST_SKELETON)) return { error: `names starting with "guest" are the server's` };
  return { name };
}

// ---- the confusable skeleton ----

/** Uppercase lookalikes, mapped before case folding (Cyrillic Н is H, though its lowercase н is not h). */
const UPPER: Record<string, string> = {
  // Cyrillic
  'А': 'A', 'В': 'B', 'Е': 'E', 'Ѕ': 'S', 'І': 'I', 'Ј': 'J', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P',
  'С': 'C', 'Т': 'T', 'У': 'Y', 'Х': 'X', 'Ү': 'Y', 'Ԛ': 'Q', 'Ԝ': 'W', 'Ӏ': 'I',
  // Greek
  'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O', 'Ρ': 'P',
  'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
};
/** Lowercase (and digit) lookalikes of Latin letters. l, I, i, 1 and | all become l; 0 becomes o. */
const LOWER: Record<string, string> = {
  // Cyrillic
  'а': 'a', 'в': 'b', 'г': 'r', 'д': 'd', 'е': 'e', 'ѕ': 's', 'і': 'l', 'ј': 'j', 'к': 'k', 'м': 'm', 'н': 'h',
  'о': 'o', 'п': 'n', 'р': 'p', 'с': 'c', 'т': 't', 'у': 'y', 'х': 'x', 'ь': 'b', 'ү': 'y', 'һ': 'h', 'ԁ': 'd',
  'ԛ': 'q', 'ԝ': 'w', 'ӏ': 'l', 'ѡ': 'w',
  // Greek
  'α': 'a', 'β': 'b', 'γ': 'y', 'ε': 'e', 'ζ': 'z', 'η': 'n', 'ι': 'l', 'κ': 'k', 'μ': 'u', 'ν': 'v', 'ο': 'o',
  'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x', 'ω': 'w', 'ς': 'c',
  // Latin lookalikes and digits
  'i': 'l', 'ı': 'l', '1': 'l', '|': 'l', 'ɩ': 'l', '0': 'o', 'ɡ': 'g', 'ɑ': 'a', 'ß': 'ss',
};
/** Letter pairs read as one letter. */
const PAIRS: [RegExp, string][] = [[/rn/g, 'm'], [/vv/g, 'w']];
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;
const IGNORABLE_ONE = /\p{Default_Ignorable_Code_Point}/u;
/** Diacritics over Latin, Greek and Cyrillic letters (é passes for e); other scripts keep their marks. */
const DIACRITICS = /[\u0300-\u036f]/g;

function mapChars(s: string, table: Record<string, string>): string {
  let out = '';
  for (const c of s) out += table[c] ?? c;
  return out;
}

/**
 * One form for names that look alike: NFKC, invisible characters gone, lookalikes mapped, case
 * folded, diacritics dropped. Two names with one skeleton cannot both be in use.
 */
export function skeleton(name: string): string {
  let s = name.normalize('NFKC').replace(IGNORABLE, '');
  s = mapChars(s, UPPER).toLowerCase();
  s = mapChars(s.normalize('NFD').replace(DIACRITICS, ''), LOWER).normalize('NFC');
  for (const [re, to] of PAIRS) s = s.replace(re, to);
  return s;
}

const GUEST_SKELETON = skeleton('guest');
