// The decoded bytes of one MIME part, found by its IMAP section number in the raw message: the
// attachment download path. Uses the structural splitter, so no full parse is needed.
import { splitMime, walkEntities } from './structure.ts';

/** Quoted-printable (RFC 2045 §6.7) to bytes; malformed escapes are kept literally. */
export function decodeQuotedPrintable(input: Buffer): Buffer {
  const out = Buffer.alloc(input.length);
  let o = 0;
  const hex = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 55 : c >= 0x61 && c <= 0x66 ? c - 87 : -1);
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c !== 0x3d) {
      out[o++] = c;
      continue;
    }
    // Soft line break: "=" followed by CRLF or LF.
    if (input[i + 1] === 0x0d && input[i + 2] === 0x0a) {
      i += 2;
      continue;
    }
    if (input[i + 1] === 0x0a) {
      i += 1;
      continue;
    }
    const h = hex(input[i + 1] ?? -1);
    const l = hex(input[i + 2] ?? -1);
    if (h >= 0 && l >= 0) {
      out[o++] = h * 16 + l;
      i += 2;
    } else {
      out[o++] = c;
    }
  }
  return out.subarray(0, o);
}

export function decodeTransfer(body: Buffer, encoding: string): Buffer {
  if (encoding === 'base64') return Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  return body;
}

/** Decoded body of the part with this section number ("1", "2.1"), or null when there is none. */
export function extractPart(raw: Buffer, section: string): Buffer | null {
  const { root } = splitMime(raw);
  const entity = walkEntities(root).find((e) => e.section === section && !e.is_message_root);
  if (!entity) return null;
  return decodeTransfer(raw.subarray(entity.body_start, entity.body_end), entity.encoding);
}
