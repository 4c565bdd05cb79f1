// Visible rendering of invisible characters: each one becomes a ⟨U+XXXX⟩ mark, so that text
// which looks harmless cannot hide what it holds. Plain DOM calls only: the element builder in
// dom.js builds on this module.

// Characters that make text look like something else: controls, invisible format characters
// (bidirectional controls, zero-width characters, every Cf), line/paragraph separators, Hangul
// fillers, a carriage return not ending a line. The server warns on the same set
// (src/core/visible.rs).
const HIDDEN = /\r(?!\n)|[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u115F\u1160\u2028\u2029\u3164\uFFA0]|\p{Cf}/gu;

/** `text` as a fragment in which each hidden character is a visible ⟨U+XXXX⟩ mark. */
export function visibleText(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  HIDDEN.lastIndex = 0;
  for (const m of text.matchAll(HIDDEN)) {
    if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
    const cp = `U+${m[0].codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    const mark = document.createElement('span');
    mark.className = 'hidden-char';
    mark.setAttribute('title', `Invisible character ${cp}`);
    mark.appendChild(document.createTextNode(`⟨${cp}⟩`));
    frag.appendChild(mark);
    last = m.index + m[0].length;
  }
  if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
  return frag;
}
