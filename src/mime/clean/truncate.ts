// Cuts text at a character budget without splitting a UTF-16 surrogate pair, so the result
// is always valid Unicode (JSON encoders would otherwise emit a lone surrogate).

/** Characters are UTF-16 code units, as String.length counts them (and as JSON clients do). */
export function truncateChars(text: string, max: number): { text: string; truncated: boolean } {
  if (text.length <= max) return { text, truncated: false };
  let end = Math.max(0, max);
  const before = text.charCodeAt(end - 1);
  if (end > 0 && before >= 0xd800 && before <= 0xdbff) end--;
  return { text: text.slice(0, end), truncated: true };
}
