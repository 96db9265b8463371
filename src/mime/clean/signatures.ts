// Finds the signature at the end of what the sender wrote, as a line index.
//
// Rules (one rule, applied to every message and fixture):
// - A "-- " delimiter line (or a bare "--" followed by a short block) starts a signature;
//   the delimiter and everything after it are dropped, the name included.
// - A mobile or app footer ("Sent from my iPhone", "Get Outlook for Android", "Envoyé de
//   mon iPhone", "Von meinem iPhone gesendet", "Sent with Proton Mail secure email.", ...)
//   among the last lines is dropped with anything below it.
// - A trailing legal disclaimer paragraph ("This email and any attachments are
//   confidential...") is dropped.
// - A sign-off ("Best regards,", "Cordialement,", "Mit freundlichen Grüßen", "よろしくお願い
//   いたします。", "此致 敬礼"...) followed by the sender's name is KEPT (an agent learns who
//   signed and how), and the contact block below the name (title, company, phone, URL,
//   address; at most CONTACT_BLOCK_MAX_LINES short lines, no P.S., no prose) is dropped.
// - Without a sign-off, a last paragraph made of a name line (2-4 capitalised words) and
//   contact lines (at least one phone, URL, address or "|") is treated the same way: name
//   kept, contact lines dropped; not when the line above ends in ':' ("Ship to:").
import {
  CONTACT_BLOCK_MAX_LINES,
  CONTACT_LINE_MAX_CHARS,
  DISCLAIMER_MAX_LINES,
  MOBILE_LINE_WINDOW,
  SIGNATURE_BARE_DASH_MAX_LINES,
  SIGNATURE_DELIMITED_MAX_LINES,
  SIGNOFF_SCAN_LINES,
} from './limits.ts';
import { isBlank } from './normalize.ts';
import { isQuoted } from './reply-headers.ts';

const MOBILE_INTRO =
  /^(?:sent (?:from|with|via|using)|envoyé (?:de|depuis|avec)|von meinem|gesendet (?:von|mit)|enviad[oa] (?:desde|de|do|com|pelo|pela)|inviato (?:da|dal|con)|verzonden (?:vanaf|van|met)|sendt (?:fra|med)|skickat (?:från|med)|wysłane (?:z|ze|przy))\s/i;
const MOBILE_PRODUCT =
  /iphone|ipad|ipod|android|mobile|móvil|mobil|handy|phone|samsung|galaxy|blackberry|outlook|windows|yahoo|proton|aol|gmail|smartphone|smartfon|huawei|xiaomi|pixel|tablet|superhuman|spark|airmail|fairemail|mail app|telefon|teléfono|telefone|celular/i;
const MOBILE_FIXED =
  /^(?:(?:get|download|télécharger|obtener|obtenha|baixe|scarica|descargar) outlook (?:for|pour|para|per)\s(?:ios|android)|outlook (?:für|voor) (?:ios|android)|(?:iphone|ipad|android|スマートフォン|携帯)から送信|(?:发自我的|發自我的|来自我的|從我的)\S)/i;

export function isMobileFooter(line: string): boolean {
  const t = line.trim();
  if (t.length === 0 || t.length > 120) return false;
  return MOBILE_FIXED.test(t) || (MOBILE_INTRO.test(t) && MOBILE_PRODUCT.test(t));
}

const SIGNOFF_PHRASES = [
  // en
  'best regards', 'kind regards', 'warm regards', 'warmest regards', 'regards', 'best wishes', 'best', 'all the best',
  'many thanks', 'thanks so much', 'thanks again', 'thanks a lot', 'thanks', 'thank you so much', 'thank you again',
  'thank you', 'thx', 'cheers', 'sincerely', 'sincerely yours', 'yours sincerely', 'yours truly', 'yours faithfully',
  'respectfully', 'take care', 'talk soon', 'with thanks', 'br', 'kr',
  // fr
  'cordialement', 'bien cordialement', 'très cordialement', 'bien à vous', 'bien à toi', 'salutations',
  'salutations distinguées', 'merci', 'merci beaucoup', 'merci encore', 'bonne journée', 'amicalement', 'à bientôt',
  // de
  'mit freundlichen grüßen', 'mit freundlichen grüssen', 'mit freundlichem gruß', 'freundliche grüße', 'viele grüße',
  'beste grüße', 'liebe grüße', 'herzliche grüße', 'schöne grüße', 'gruß', 'grüße', 'lg', 'vg', 'mfg', 'danke',
  'vielen dank',
  // es / pt
  'saludos', 'saludos cordiales', 'un saludo', 'un abrazo', 'atentamente', 'cordialmente', 'muchas gracias', 'gracias',
  'abrazos', 'atenciosamente', 'cumprimentos', 'abraços', 'abraço', 'um abraço', 'obrigado', 'obrigada', 'att',
  // it
  'cordiali saluti', 'distinti saluti', 'saluti', 'un saluto', 'grazie', 'grazie mille', 'a presto',
  // nl
  'met vriendelijke groet', 'met vriendelijke groeten', 'vriendelijke groet', 'vriendelijke groeten', 'groet',
  'groeten', 'hartelijke groet', 'hartelijke groeten', 'mvg', 'bedankt',
  // da / no / sv
  'med venlig hilsen', 'venlig hilsen', 'med vennlig hilsen', 'vennlig hilsen', 'hilsen', 'mvh', 'med vänliga hälsningar',
  'vänliga hälsningar', 'med vänlig hälsning', 'vänlig hälsning', 'hälsningar', 'tack', 'tak', 'takk',
  // pl
  'pozdrawiam', 'pozdrawiam serdecznie', 'serdecznie pozdrawiam', 'z poważaniem', 'pozdrowienia', 'dziękuję',
];
const SIGNOFF_ALT = SIGNOFF_PHRASES.sort((a, b) => b.length - a.length).join('|');
const SIGNOFF_LINE = new RegExp(`^(?:${SIGNOFF_ALT})\\s?[,.!;…]*$`, 'iu');
// "Thanks, Maya": the name on the sign-off line itself, capitalised words only.
const SIGNOFF_HEAD = new RegExp(`^(?:${SIGNOFF_ALT})$`, 'i');
const NAME = /^\p{Lu}[\p{L}'.-]{0,30}(?:\s\p{Lu}[\p{L}'.-]{0,30}){0,3}$/u;
const SIGNOFF_CJK = /^(?:以上(?:、|，)?)?(?:よろしく|宜しく)お願い(?:いた|致)?します。?$|^よろしくお願い申し上げます。?$|^(?:谢谢|謝謝|此致|敬礼|祝好|顺祝商祺|祝商祺|顺颂商祺)[！!。]?$/;

function signoffKind(line: string): 'alone' | 'named' | null {
  const t = line.trim();
  if (t.length > 60) return null;
  if (SIGNOFF_LINE.test(t) || SIGNOFF_CJK.test(t)) return 'alone';
  const comma = t.indexOf(',');
  if (comma < 0) return null;
  return SIGNOFF_HEAD.test(t.slice(0, comma).trim()) && NAME.test(t.slice(comma + 1).trim()) ? 'named' : null;
}

const CONTACTISH: readonly RegExp[] = [
  /\+?\d[\d\s().\/-]{6,}\d/, // phone, postcode-with-number, fax
  /https?:\/\/|www\./i,
  /[\w.+-]+@[\w-]+\.[\w.-]+/,
  /\b[\w-]+\.(?:com|org|net|io|co|example|de|fr|es|it|nl|dk|se|no|pl|jp|cn|uk|eu|ch|at|be|pt|br|info|biz|app|dev)\b/i,
  /\|/,
  /(?:^|[\s(])(?:tel|tél|phone|mobile|móvil|handy|telefon|telefone|telefono|tlf|fax|direct|office)\b/i,
  /電話|电话|手机|携帯|TEL/,
];
const POSTSCRIPT = /^(?:p\.\s?s\.|ps[:.]|pps[:.]|p\.p\.s\.)/i;
const UNSUBSCRIBE = /unsubscribe|abbestellen|abmelden|désabonner|désinscri|darse de baja|cancelar (?:la )?suscripci|annulla iscrizione|afmelden|avregistrera|afmeld/i;

// "Ltd.", "Inc.", "B.V.", "S.L.", "Sp. z o.o.": company suffixes end in a period too.
const ABBREVIATION_END = /(?:^|\s)(?:\p{Lu}[\p{L}]{0,4}\.|(?:\p{L}\.){2,3})$/u;

/** Ends in sentence punctuation and has six or more words: a sentence, not a job title. */
function isProse(line: string): boolean {
  const t = line.trim();
  if (!/[.!?]$/.test(t) || ABBREVIATION_END.test(t)) return false;
  return t.split(/\s+/).filter((w) => /\p{L}/u.test(w)).length >= 6;
}

function isContactBlock(lines: readonly string[]): boolean {
  const content = lines.filter((l) => !isBlank(l));
  if (content.length === 0 || content.length > CONTACT_BLOCK_MAX_LINES) return false;
  for (const l of content) {
    if (l.length > CONTACT_LINE_MAX_CHARS || isQuoted(l) || isProse(l)) return false;
    if (POSTSCRIPT.test(l.trim()) || UNSUBSCRIBE.test(l)) return false;
  }
  return content.length <= 3 || content.some((l) => CONTACTISH.some((re) => re.test(l)));
}

const DISCLAIMER_START =
  /^(?:this (?:e-?mail|message|communication)|the (?:information|contents?) (?:contained )?in this|confidential(?:ity)?|disclaimer|privileged|notice:|ce (?:message|courriel|mail)|diese (?:e-?mail|nachricht)|este (?:mensaje|correo)|esta mensagem|questo messaggio|dit (?:e-?mail)?bericht|denne (?:e-?mail|meddelelse|e-?post)|detta (?:e-?post|meddelande)|ta wiadomość|niniejsza wiadomość)/i;
const DISCLAIMER_WORD =
  /confidential|privileg|intended recipient|vertraulich|confidentiel|confidencial|riservat|vertrouwelijk|fortrolig|konfidentiell|poufn/i;

function lastContent(lines: readonly string[], end: number): number {
  let i = end - 1;
  while (i >= 0 && isBlank(lines[i] ?? '')) i--;
  return i;
}

function mobileStart(lines: readonly string[], end: number): number {
  let start = end;
  for (let i = end - 1, seen = 0; i >= 0 && seen < MOBILE_LINE_WINDOW; i--) {
    const l = lines[i] ?? '';
    if (isBlank(l)) continue;
    seen++;
    if (isMobileFooter(l)) start = i;
  }
  return start;
}

function disclaimerStart(lines: readonly string[], end: number): number {
  const last = lastContent(lines, end);
  let i = last;
  while (i > 0 && !isBlank(lines[i - 1] ?? '')) i--;
  if (last < 0 || last - i + 1 > DISCLAIMER_MAX_LINES) return end;
  const first = (lines[i] ?? '').trim();
  if (!DISCLAIMER_START.test(first)) return end;
  const paragraph = lines.slice(i, last + 1).join(' ');
  return DISCLAIMER_WORD.test(paragraph) ? i : end;
}

function delimiterStart(lines: readonly string[], end: number): number {
  let start = end;
  let content = 0;
  for (let i = end - 1; i >= 0 && content <= SIGNATURE_DELIMITED_MAX_LINES; i--) {
    const l = lines[i] ?? '';
    if (l === '-- ' || (l.trim() === '--' && content <= SIGNATURE_BARE_DASH_MAX_LINES)) start = i;
    else if (!isBlank(l)) content++;
  }
  return start;
}

const NAME_LINE = /^\p{Lu}[\p{L}'’.-]{0,30}(?:\s\p{Lu}[\p{L}'’.-]{0,30}){1,3}$/u;
const NAME_BLOCK_MAX_LINES = 6;

function nameBlockStart(lines: readonly string[], end: number): number {
  const last = lastContent(lines, end);
  let first = last;
  while (first > 0 && !isBlank(lines[first - 1] ?? '')) first--;
  const size = last - first + 1;
  if (last < 0 || size < 2 || size > NAME_BLOCK_MAX_LINES || !NAME_LINE.test((lines[first] ?? '').trim())) return end;
  const above = lastContent(lines, first);
  if (above < 0 || /[:：]$/.test((lines[above] ?? '').trim()) || isQuoted(lines[above] ?? '')) return end;
  const contact = lines.slice(first + 1, last + 1);
  if (!isContactBlock(contact) || !contact.some((l) => CONTACTISH.some((re) => re.test(l)))) return end;
  return first + 1;
}

function contactBlockStart(lines: readonly string[], end: number): number {
  for (let i = end - 1, seen = 0; i >= 0 && seen < SIGNOFF_SCAN_LINES; i--) {
    const l = lines[i] ?? '';
    if (isBlank(l)) continue;
    if (isQuoted(l)) return end;
    seen++;
    const kind = signoffKind(l);
    if (!kind) continue;
    let name = i;
    if (kind === 'alone') {
      name = i + 1;
      while (name < end && isBlank(lines[name] ?? '')) name++;
      if (name >= end) return end;
      const n = (lines[name] ?? '').trim();
      if (n.length > 60 || isProse(n) || isQuoted(n)) return end;
    }
    const block = lines.slice(name + 1, end);
    return isContactBlock(block) ? name + 1 : end;
  }
  return end;
}

/** Index where the signature starts within lines[0, end), or `end` when there is none. */
export function signatureStart(lines: readonly string[], end: number): number {
  let e = end;
  e = mobileStart(lines, e);
  e = disclaimerStart(lines, e);
  e = delimiterStart(lines, e);
  const afterSignoff = contactBlockStart(lines, e);
  return afterSignoff < e ? afterSignoff : nameBlockStart(lines, e);
}
