// Recognises the lines mail clients write in front of quoted or forwarded history: reply
// attributions ("On <date>, <name> wrote:" in 13 languages), Outlook header blocks
// ("From:/Sent:/To:/Subject:" and their translations), "Original Message" separators and
// forward markers. Every regex runs on one trimmed line of at most HEADER_LINE_MAX_CHARS,
// uses bounded repetition only, and is anchored, so matching is linear in the line length.
import { ATTRIBUTION_MAX_LINES, HEADER_BLOCK_MAX_LINES, HEADER_LINE_MAX_CHARS } from './limits.ts';
import { HISTORY_MARK, isBlank } from './normalize.ts';

// The verb that ends a reply attribution, per language. Each must be the end of the line.
const ATTRIBUTION_ENDINGS: readonly RegExp[] = [
  /\bwrote\s?[:：]$/i, // en: On Mon, Jan 8, 2024 at 4:12 PM Name <a@b> wrote:
  /\sa\s+écrit\s?[:：]$/i, // fr: Le lun. 8 janv. 2024 à 14:05, Name <a@b> a écrit :
  /\bschrieb\b.{0,250}[:：]$/i, // de: Am 08.01.2024 um 20:11 schrieb Name <a@b>:
  /\bescribió\s?[:：]$/i, // es: El lun, 8 ene 2024 a las 12:30, Name (<a@b>) escribió:
  /\bescreveu\s?[:：]$/i, // pt: Em seg., 8 de jan. de 2024 às 16:45, Name <a@b> escreveu:
  /\bha\s+scritto\s?[:：]$/i, // it: Il giorno lun 8 gen 2024 alle ore 11:20 Name <a@b> ha scritto:
  /\bschreef\b.{0,250}[:：]$/i, // nl: Op ma 8 jan 2024 om 13:02 schreef Name <a@b>:
  /\bskrev\b.{0,250}[:：]$/i, // da/no/sv: Den man. 8. jan. 2024 kl. 10.15 skrev Name <a@b>:
  /(?:pisze|napisał|napisała|napisał\(a\)|napisali)\s?[:：]$/i, // pl: W dniu 8.01.2024 o 21:14, Name pisze:
  /(?:のメッセージ|のメール|さんは書きました|は書きました)\s?[:：]$/, // ja (Apple Mail, Thunderbird)
  /(?:写道|寫道)\s?[:：]$/, // zh: 在 2024年1月8日，20:30，Name <a@b> 写道：
  /\bпишет\s?[:：]$/i, // ru, harmless to keep
];
// Gmail in Japanese writes no verb at all: "2024年1月8日(月) 15:30 Name <a@b>:".
const JA_DATE_ATTRIBUTION = /^\d{4}年\d{1,2}月\d{1,2}日.{0,250}@.{0,250}[:：]$/;
// Zoho Mail: "---- On Mon, 08 Jan 2024 10:15:02 +0530 Name <a@b> wrote ---".
const ZOHO_ATTRIBUTION = /^-{2,}\s?On\s.{0,300}\bwrote\s?-{2,}$/i;
// How attributions start; together with a date digit this marks one we trust enough to cut
// unquoted text after it.
const ATTRIBUTION_OPENER = /^(?:-{2,}\s?)?(?:On|Le|Am|El|Em|Il giorno|Il|Op|Den|W dniu|在|\d)/i;
// Matches the start of lines that may begin a wrapped attribution.
const WRAPPED_OPENER = /^(?:On|Le|Am|El|Em|Il|Op|Den|W dniu|在|\d|\S{1,40}\s?<\S{1,120}@)/i;

export type Attribution = { start: number; end: number; strong: boolean };

function attributionText(text: string): { strong: boolean } | null {
  if (text.length > HEADER_LINE_MAX_CHARS) return null;
  const t = text.trim();
  const hasAt = t.includes('@');
  const hasDigit = /\d/.test(t);
  if (JA_DATE_ATTRIBUTION.test(t) || ZOHO_ATTRIBUTION.test(t)) return { strong: true };
  if (!hasAt && !hasDigit) return null;
  if (!ATTRIBUTION_ENDINGS.some((re) => re.test(t))) return null;
  return { strong: hasAt || (hasDigit && ATTRIBUTION_OPENER.test(t)) };
}

/** Reply attribution starting at `i` (one line, or wrapped over up to three). */
export function attributionAt(lines: readonly string[], i: number): Attribution | null {
  const first = lines[i] ?? '';
  if (isBlank(first) || first.length > HEADER_LINE_MAX_CHARS) return null;
  let joined = first.trim();
  for (let n = 0; n < ATTRIBUTION_MAX_LINES; n++) {
    if (n > 0) {
      const next = lines[i + n];
      if (next === undefined || isBlank(next) || isQuoted(next)) return null;
      joined += ' ' + next.trim();
      if (!WRAPPED_OPENER.test(first.trim())) return null;
    }
    const hit = attributionText(joined);
    if (hit) return { start: i, end: i + n, ...hit };
  }
  return null;
}

/** Reply attribution whose last line is `end` (used when walking up from a quote block). */
export function attributionEndingAt(lines: readonly string[], end: number): Attribution | null {
  for (let n = 0; n < ATTRIBUTION_MAX_LINES && end - n >= 0; n++) {
    const hit = attributionAt(lines, end - n);
    if (hit && hit.end === end) return hit;
  }
  return null;
}

/** A reply header in a language without a rule: the line(s) right above a quote that end in
 * a colon and name an address and a date ("8 Oca 2024 Pzt, 10:15 tarihinde Ad <a@b> şunu
 * yazdı:"). Used only above a trailing '>' quote, never to cut unquoted text. */
export function genericAttributionEndingAt(lines: readonly string[], end: number): number | null {
  let joined = '';
  for (let n = 0; n < 2 && end - n >= 0; n++) {
    const line = lines[end - n] ?? '';
    if (isBlank(line) || isQuoted(line) || line.length > HEADER_LINE_MAX_CHARS) return null;
    joined = n === 0 ? line.trim() : `${line.trim()} ${joined}`;
    if (/[:：]$/.test(joined) && joined.includes('@') && /\d/.test(joined) && joined.length <= HEADER_LINE_MAX_CHARS) return end - n;
  }
  return null;
}

/** The text of a quoted line without its '>' markers. */
export function unquote(line: string): string {
  return line.replace(/^(?: {0,3}>)+ ?/, '');
}

export function isQuoted(line: string): boolean {
  return /^ {0,3}>/.test(line);
}

const FORWARD_RULED = new RegExp(
  '^-{2,}\\s?(?:' +
    [
      'Forwarded message', 'Weitergeleitete Nachricht', 'Message transféré', 'Mensaje reenviado',
      'Mensagem encaminhada', 'Messaggio inoltrato', 'Doorgestuurd bericht', 'Videresendt besked',
      'Videresendt meddelelse', 'Videresendt melding', 'Vidarebefordrat meddelande', 'Wiadomość przekazana dalej',
      'Przekazana wiadomość', '転送されたメッセージ', '转发的邮件', '轉寄的郵件', 'Пересылаемое сообщение',
    ].join('|') +
    ')\\s?-{2,}$',
  'i',
);
const FORWARD_INTRO = new RegExp(
  '^(?:' +
    [
      'Begin forwarded message', 'Anfang der weitergeleiteten (?:Nachricht|E-Mail)', 'Début du message (?:réexpédié|transféré)',
      'Inicio del mensaje reenviado', 'Início da mensagem (?:reencaminhada|encaminhada)', 'Começo da mensagem encaminhada',
      'Inizio messaggio inoltrato', 'Begin doorgestuurd bericht', 'Start på videresendt (?:besked|meddelelse)',
      'Vidarebefordrat (?:brev|mejl|meddelande)', 'Początek przekazywanej wiadomości', '転送されたメッセージ',
      '以下是转发的邮件', '开始转发的邮件', '轉寄的郵件',
    ].join('|') +
    ')\\s?[:：]?$',
  'i',
);

/** "---------- Forwarded message ---------", "Begin forwarded message:" and translations. */
export function isForwardMarker(line: string): boolean {
  if (line.length > HEADER_LINE_MAX_CHARS) return false;
  const t = line.trim();
  return FORWARD_RULED.test(t) || FORWARD_INTRO.test(t);
}

const ORIGINAL_MESSAGE = new RegExp(
  '^-{2,}\\s?(?:' +
    [
      'Original Message', 'Ursprüngliche Nachricht', 'Originalnachricht', "Message d'origine", 'Message original',
      'Mensaje original', 'Mensagem original', 'Messaggio originale', 'Oorspronkelijk bericht', 'Origineel bericht',
      'Oprindelig meddelelse', 'Opprinnelig melding', 'Originalmeddelande', 'Ursprungligt meddelande',
      'Wiadomość oryginalna', 'Oryginalna wiadomość', '元のメッセージ', '原始邮件', '原始郵件', 'Исходное сообщение',
    ].join('|') +
    ')\\s?-{2,}$',
  'i',
);

/** "-----Original Message-----" (Outlook, Samsung, Proton) and translations. */
export function isOriginalMessageSeparator(line: string): boolean {
  return line.length <= HEADER_LINE_MAX_CHARS && ORIGINAL_MESSAGE.test(line.trim());
}

/** The underscore rule Outlook puts above its header block. */
export function isUnderscoreRule(line: string): boolean {
  return /^_{10,200}$/.test(line.trim());
}

const label = (names: string): RegExp => new RegExp(`^\\*{0,2}(?:${names})\\*{0,2}\\s?[:：]`, 'i');
const FROM_LABEL = label('From|De|Von|Da|Van|Fra|Från|Frá|Od|Lähettäjä|差出人|送信者|发件人|寄件者|寄件人|От');
const SENT_LABEL = label('Sent|Date|Envoyé|Gesendet|Datum|Enviado|Enviada|Fecha|Data|Inviato|Verzonden|Sendt|Dato|Skickat|Wysłano|Lähetetty|送信日時|日付|发送时间|发送日期|寄件日期|日期|時間|Отправлено|Дата');
const TO_LABEL = label('To|À|A|An|Para|Aan|Til|Till|Do|Vastaanottaja|宛先|收件人|收件者|Кому');
const CC_LABEL = label('Cc|Kopie|Copie|Copia|Kopia|DW|Kopio|抄送|副本|Копия');
const SUBJECT_LABEL = label('Subject|Objet|Betreff|Asunto|Assunto|Oggetto|Onderwerp|Emne|Ämne|Temat|Aihe|件名|主题|主旨|Тема');

export type HeaderBlock = { start: number; end: number; subject: string | null };

/** An Outlook-style header block whose "From:" line is `i`: the From line plus at least two
 * more label lines directly below, one of them Sent/Date or Subject. */
export function headerBlockAt(lines: readonly string[], i: number): HeaderBlock | null {
  const first = (lines[i] ?? '').trim();
  if (first.length > HEADER_LINE_MAX_CHARS || !FROM_LABEL.test(first)) return null;
  let end = i;
  let count = 0;
  let strong = false;
  let subject: string | null = null;
  for (let j = i + 1; j < lines.length && j <= i + HEADER_BLOCK_MAX_LINES; j++) {
    const t = (lines[j] ?? '').trim();
    if (t === '' || t.length > HEADER_LINE_MAX_CHARS) break;
    if (SUBJECT_LABEL.test(t)) {
      subject = t.replace(/^[^:：]*[:：]\s?/, '');
      strong = true;
    } else if (SENT_LABEL.test(t)) strong = true;
    else if (!TO_LABEL.test(t) && !CC_LABEL.test(t)) break;
    count++;
    end = j;
  }
  return count >= 2 && strong ? { start: i, end, subject } : null;
}

// First prefix of a subject, to tell an Outlook forward ("FW:") from a reply ("RE:"): both
// put the same header block above the old message.
const FORWARD_PREFIX = /^\s?(?:fwd?|wg|tr|trs|rv|enc|i|vs|vb|doorst|pd|転送|转发|轉寄)\s?[:：]/i;
const REPLY_PREFIX = /^\s?(?:re|aw|sv|r|ris|antw|odp|res|回复|答复|回覆|返信|ynt)\s?[:：]/i;

/** Whether a header block (or separator without one) introduces a forward the agent must
 * read rather than a quote. The message's own subject decides first: "FW: RE: x" forwards a
 * reply, "RE: FW: x" replies to a forward. Without one, the quoted Subject: line decides. */
export function isForwardBlock(block: HeaderBlock | null, outerSubject: string | null | undefined): boolean {
  if (outerSubject) {
    if (FORWARD_PREFIX.test(outerSubject)) return true;
    if (REPLY_PREFIX.test(outerSubject)) return false;
  }
  return block !== null && block.subject !== null && FORWARD_PREFIX.test(block.subject);
}

export function isHistoryMark(line: string): boolean {
  return line === HISTORY_MARK;
}
