// Widgets shared by the tabs: badges, copyable hashes, fields, code files and their toggle.
import { clear, h } from './dom.js';
import { absolute, ago, bytes, parseTime, shortHash } from './format.js';

/** A <time> element showing relative time, with the absolute time as its title. */
export function timeEl(iso, { relative = true } = {}) {
  const d = parseTime(iso);
  if (!d) return h('span', { class: 'muted' }, iso ? String(iso) : '–');
  return h('time', {
    datetime: iso,
    title: relative ? absolute(d) : ago(d),
    dataset: relative ? { rel: iso } : undefined,
  }, relative ? ago(d) : absolute(d));
}

export function badge(text, kind, title) {
  return h('span', { class: `badge badge-${kind}`, title }, text);
}

function copyButton(value, label) {
  const btn = h('button', { type: 'button', class: 'btn btn-tiny copy', title: `Copy ${label}`, 'aria-label': `Copy ${label}` }, 'Copy');
  btn.addEventListener('click', async () => {
    let ok = false;
    try {
      await navigator.clipboard.writeText(value);
      ok = true;
    } catch (_) {
      // No clipboard access: show the full value selected, so that Ctrl+C copies it.
      const code = btn.previousElementSibling;
      if (code) {
        code.textContent = value;
        const range = document.createRange();
        range.selectNodeContents(code);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      }
    }
    btn.textContent = ok ? 'Copied' : 'Press Ctrl+C';
    setTimeout(() => {
      if (btn.isConnected) btn.textContent = 'Copy';
    }, 1500);
  });
  return btn;
}

// How far the entry's pinned key holds against the key the sender publishes now.
const ENTRY_PROOF = {
  proven: ['key pinned', 'approve'],
  unverified: ['no key: unverified', 'ignore'],
  none: ['no key pinned yet', 'wait'],
  key_changed: ['identity key changed', 'flag'],
  invalid: ['key unreadable', 'flag'],
};

/** A trusted sender's or peer's entry: how far its pinned key holds. */
export function entryBadge(proof) {
  if (!proof) return null;
  const known = ENTRY_PROOF[proof.status];
  return known ? badge(known[0], known[1], proof.reason || undefined) : null;
}

/** A shortened key fingerprint (`sha256:<hex>`) with the full value in the title, and a copy button. */
export function fingerprintEl(key) {
  return h('span', { class: 'sig' },
    h('code', { class: 'hash', title: key, tabindex: '0' }, `key ${shortHash(String(key).replace(/^sha256:/, ''))}`),
    copyButton(key, 'key fingerprint'));
}

/** A shortened signature with its full value in the title, plus a copy button. */
export function signatureEl(sig) {
  if (!sig) return h('span', { class: 'muted' }, 'none (the job is invalid)');
  return h('span', { class: 'sig' },
    h('code', { class: 'hash', title: sig, tabindex: '0' }, shortHash(sig)),
    copyButton(sig, 'signature'));
}

export function field(label, ...value) {
  return [h('dt', null, label), h('dd', null, ...value)];
}

export function reasonsEl(reasons, heading) {
  if (!Array.isArray(reasons) || reasons.length === 0) return null;
  return h('div', { class: 'reasons' },
    heading ? h('p', { class: 'reasons-title' }, heading) : null,
    h('ul', null, reasons.map((r) => h('li', null, String(r)))));
}

export function tagsEl(tags) {
  if (!Array.isArray(tags) || tags.length === 0) return null;
  return h('span', { class: 'tags' }, tags.map((t) => h('span', { class: 'tag' }, String(t))));
}

/** The code files of a job or history record. */
function filesEl(files) {
  if (!Array.isArray(files) || files.length === 0) return h('p', { class: 'empty' }, 'No code files.');
  return h('div', { class: 'files' }, files.map((f) => {
    const hasText = typeof f.text === 'string';
    return h('section', { class: 'file', dataset: { path: String(f.path) } },
      h('header', { class: 'file-head' },
        h('code', { class: 'file-path' }, String(f.path)),
        h('span', { class: 'file-size' }, bytes(f.size)),
        h('code', { class: 'hash file-sha', title: String(f.sha256 || ''), tabindex: '0' }, shortHash(f.sha256)),
        f.sha256 ? copyButton(String(f.sha256), `SHA-256 of ${f.path}`) : null),
      hasText
        ? h('pre', { class: 'code', tabindex: '0', 'aria-label': `Contents of ${f.path}` }, f.text)
        : h('p', { class: 'file-note' }, 'Binary or too large to show.'),
      hasText && f.truncated ? h('p', { class: 'file-note warn-text' }, 'Truncated: only the beginning of this file is shown.') : null);
  }));
}

let panelIds = 0;

/**
 * A "View code" toggle and its panel. `load()` returns the files (it may fetch them); the panel
 * is filled on first open and kept (not re-rendered) by later refreshes.
 */
export function codeToggle(load) {
  const id = `code-panel-${++panelIds}`;
  const panel = h('div', { class: 'code-panel', id, hidden: true });
  const btn = h('button', { type: 'button', class: 'btn btn-quiet toggle-code', 'aria-expanded': 'false', 'aria-controls': id }, 'View code');
  let loaded = false;
  btn.addEventListener('click', async () => {
    const open = btn.getAttribute('aria-expanded') === 'true';
    if (open) {
      btn.setAttribute('aria-expanded', 'false');
      btn.textContent = 'View code';
      panel.hidden = true;
      return;
    }
    btn.setAttribute('aria-expanded', 'true');
    btn.textContent = 'Hide code';
    panel.hidden = false;
    if (loaded) return;
    clear(panel);
    panel.appendChild(h('p', { class: 'muted' }, 'Loading code…'));
    try {
      const files = await load();
      clear(panel);
      panel.appendChild(filesEl(files));
      loaded = true;
    } catch (err) {
      clear(panel);
      panel.appendChild(h('p', { class: 'inline-error' }, err.message, err.hint ? ` ${err.hint}` : ''));
    }
  });
  const reset = () => {
    loaded = false;
    if (btn.getAttribute('aria-expanded') === 'true') {
      btn.setAttribute('aria-expanded', 'false');
      btn.click();
    }
  };
  return { btn, panel, reset };
}

/** An email that may wrap before its @ rather than mid-word. */
export function emailEl(email) {
  const str = String(email);
  const at = str.indexOf('@');
  return at > 0
    ? h('span', { class: 'email' }, str.slice(0, at), h('wbr'), str.slice(at))
    : h('span', { class: 'email' }, str);
}

/**
 * The store files the server could not read, each with its reason, in `list`; `box` is shown
 * only when there are some. The list is rebuilt only when they changed.
 */
export function showInvalid(list, box, invalid) {
  const key = JSON.stringify(invalid);
  if (list.dataset.key !== key) {
    clear(list);
    for (const inv of invalid) {
      list.appendChild(h('li', null, h('code', null, String(inv.file)), ': ', String(inv.reason || 'invalid')));
    }
    list.dataset.key = key;
  }
  box.hidden = invalid.length === 0;
}
