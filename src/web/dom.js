// Building DOM elements, and updating lists in place across refreshes.
//
// Every server-provided string (job names, emails, file contents, reasons...) is written with
// textContent or as a text node: never innerHTML. Job contents are attacker-controlled.
import { visibleText } from './visible.js';

export const $ = (id) => document.getElementById(id);

/** Creates an element. Strings among the children become text nodes (never parsed as HTML). */
export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') add(el, [v]);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  add(el, kids);
  return el;
}

export function add(el, kids) {
  for (const kid of kids) {
    if (kid === null || kid === undefined || kid === false) continue;
    if (Array.isArray(kid)) add(el, kid);
    else if (kid instanceof Node) el.appendChild(kid);
    else el.appendChild(visibleText(String(kid)));
  }
}

/** Replaces an element's text, showing hidden characters. */
export function setVisible(el, text) {
  clear(el);
  el.appendChild(visibleText(text));
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/**
 * Updates `list` to show `items` in order, reusing the existing element of each key. An element
 * whose fingerprint is unchanged is left alone (so an open code panel, its scroll position and
 * keyboard focus survive a refresh); a changed one is passed to `update`. Elements are only
 * moved when the order changed.
 */
export function reconcile(list, items, { key, fp, build, update, keep }) {
  const old = new Map();
  for (const el of Array.from(list.children)) {
    if (el.dataset.key !== undefined) old.set(el.dataset.key, el);
    else el.remove();
  }
  // Elements no longer among the items that `keep` holds on to stay where they are (an open
  // form in them keeps its text and focus); the others are laid out around them.
  const stay = new Set();
  if (keep) {
    const keys = new Set(items.map(key));
    for (const [k, el] of old) if (!keys.has(k) && keep(el)) stay.add(el);
  }
  let prev = null;
  const kept = new Set();
  for (const item of items) {
    const k = key(item);
    const f = fp(item);
    let el = old.get(k);
    if (el && kept.has(el)) continue; // duplicate key: show once
    if (!el) {
      el = build(item);
      el.dataset.key = k;
    } else if (el.dataset.fp !== f) {
      update(el, item);
    }
    el.dataset.fp = f;
    kept.add(el);
    let want = prev ? prev.nextSibling : list.firstChild;
    while (want && stay.has(want)) want = want.nextSibling;
    if (want !== el) list.insertBefore(el, want);
    prev = el;
  }
  for (const el of old.values()) if (!kept.has(el) && !stay.has(el)) el.remove();
}

export function showEmpty(el, text) {
  if (text) {
    el.textContent = text;
    el.hidden = false;
  } else {
    el.hidden = true;
  }
}

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * Gives the row `el` the content of the freshly built `next` in place (`reconcile` keeps `el`),
 * keeping keyboard focus on the button of the same kind.
 */
export function updateRow(el, next) {
  const focused = el.contains(document.activeElement) ? document.activeElement : null;
  const kind = focused && focused.tagName === 'BUTTON' ? focused.className.split(' ').pop() : null;
  el.className = next.className;
  for (const [k, v] of Object.entries(next.dataset)) el.dataset[k] = v;
  el.replaceChildren(...next.childNodes);
  if (focused) {
    const same = kind ? el.querySelector(`button.${CSS.escape(kind)}`) : null;
    if (same) same.focus();
  }
}
