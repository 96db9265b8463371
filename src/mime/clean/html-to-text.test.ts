import { test } from 'node:test';
import assert from 'node:assert/strict';
import { htmlToText } from './html-to-text.ts';
import { decodeEntities } from './html-entities.ts';
import { parseHtml } from './html-parse.ts';

test('HTML to text: links keep their target, images and pixels drop, hidden content drops', () => {
  assert.equal(htmlToText('<p>Read <a href="https://x.example/a">the guide</a>.</p>').trim(), 'Read the guide (https://x.example/a).');
  assert.equal(htmlToText('<a href="https://x.example/a">https://x.example/a</a>').trim(), 'https://x.example/a');
  assert.equal(htmlToText('<a href="https://x.example/a">x.example/a</a>').trim(), 'https://x.example/a');
  assert.equal(htmlToText('Mail <a href="mailto:a@x.example">a@x.example</a>').trim(), 'Mail a@x.example');
  assert.equal(htmlToText('<a href="mailto:a@x.example?subject=hi">Write to us</a>').trim(), 'Write to us (a@x.example)');
  assert.equal(htmlToText('<a href="tel:+15550100">Call</a> <a href="#top">Top</a>').trim(), 'Call Top');
  assert.equal(htmlToText('<a href="https://x.example/"><img src="logo.png" alt="Acme"></a>').trim(), 'Acme (https://x.example/)');
  assert.equal(htmlToText('<a href="https://t.example/c"><img src="https://t.example/o.gif" width="1" height="1"></a>Hi').trim(), 'Hi');
  assert.equal(htmlToText('<p>Hi</p><img src="https://x.example/photo.jpg" alt="A photo">').trim(), 'Hi');
  assert.equal(htmlToText('<head><title>T</title><style>p{}</style></head><script>x()</script><div style="display: none">preheader</div><p hidden>h</p><p>Body</p>').trim(), 'Body');
  assert.equal(htmlToText('<p>Caf&eacute; &amp; cr&egrave;me &#8211; &#x1F600; &euro;5&nbsp;off &copy</p>').trim(), 'Café & crème – 😀 €5\u00a0off ©');
  assert.equal(htmlToText('<a href="https://x.example/?a=1&copy=2">q</a>').trim(), 'q (https://x.example/?a=1&copy=2)');
});

test('HTML to text: paragraphs, lines, lists, tables, pre and blockquotes', () => {
  assert.equal(htmlToText('<div>a</div><div><br></div><div>b</div>'), 'a\n\nb');
  assert.equal(htmlToText('<p>a</p><p>b<br>c</p>'), 'a\n\nb\nc');
  assert.equal(htmlToText('<p class="MsoNormal">a</p><p class="MsoNormal">b</p>'), 'a\nb');
  assert.equal(htmlToText('<p>Steps:</p><ol start="3"><li>one</li><li>two<ul><li>sub</li></ul></li></ol><p>end</p>'), 'Steps:\n\n3. one\n4. two\n   - sub\n\nend');
  assert.equal(htmlToText('<table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td> €3 </td></tr><tr><td colspan="2">Total €3</td></tr></table>'), 'Item | Price\nTea | €3\nTotal €3');
  assert.equal(htmlToText('<table><tr><td><p>cell one</p></td><td><p>cell two</p></td></tr></table>'), 'cell one\n\ncell two');
  assert.equal(htmlToText('<pre>  indented\n\tcode</pre>'), '  indented\n\tcode');
  assert.equal(htmlToText('<p>x</p><blockquote><p>q1</p><p>q2</p><blockquote>deep</blockquote></blockquote>'), 'x\n\n> q1\n>\n> q2\n>\n> > deep');
});

test('entities: named, numeric, windows-1252 C1 mapping, legacy names without ";" only in text', () => {
  assert.equal(decodeEntities('&lt;&gt;&amp;&quot;&apos;&hellip;&Omega;&omega;&rArr;'), '<>&"\'…Ωω⇒');
  assert.equal(decodeEntities('&#146;&#x92;&#0;&#xD800;&#1114112;'), '’’\uFFFD\uFFFD\uFFFD');
  assert.equal(decodeEntities('&eacutex &eacute; &unknown;'), '&eacutex é &unknown;');
  assert.equal(decodeEntities('a=1&copy=2', true), 'a=1&copy=2');
  assert.equal(decodeEntities('&copy 2024'), '© 2024');
});

test('parser: implied end tags, void elements, raw text, attributes', () => {
  const root = parseHtml('<ul><li>a<li>b</ul><p>x<p>y<table><tr><td>1<td>2<tr><td>3</table><img src=a.png alt="A &amp; B"><script>if (a<b) {}</script><div __proto__="x" class=c CLASS=d>');
  const tags = (n: ReturnType<typeof parseHtml>): string[] => n.children.flatMap((c) => (typeof c === 'string' ? [] : [c.tag]));
  assert.deepEqual(tags(root), ['ul', 'p', 'p', 'table', 'img', 'script', 'div']);
  const ul = root.children[0];
  assert.ok(ul && typeof ul !== 'string');
  assert.deepEqual(tags(ul), ['li', 'li']);
  const img = root.children[4];
  assert.ok(img && typeof img !== 'string');
  assert.equal(img.attrs.alt, 'A & B');
  const div = root.children[6];
  assert.ok(div && typeof div !== 'string');
  assert.equal(div.attrs.class, 'c');
  assert.equal(Object.getPrototypeOf(div.attrs), Object.prototype);
  const script = root.children[5];
  assert.ok(script && typeof script !== 'string');
  assert.deepEqual(script.children, ['if (a<b) {}']);
});

test('quote containers emit a history mark line; nothing else does', () => {
  assert.equal(htmlToText('<div>a</div><div class="gmail_quote">b</div>'), 'a\n\uE000\nb');
  assert.equal(htmlToText('<div>a</div><div id="x_divRplyFwdMsg">b</div>'), 'a\n\uE000\nb');
  assert.equal(htmlToText('<div>a</div><div class="quote">b</div>'), 'a\nb');
});
