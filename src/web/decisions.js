// The Decisions tab: the latest entries of the decision log.
import { api } from './client.js';
import { $, add, clear, h, setText, showEmpty } from './dom.js';
import { absolute, parseTime, plural } from './format.js';
import { emptyOnFailure, latest } from './notices.js';
import { state } from './state.js';
import { badge, emailEl, signatureEl } from './widgets.js';

const OUTCOME = {
  approved: ['approved', 'approve'],
  waiting: ['waiting', 'wait'],
  flagged: ['flagged', 'flag'],
  sent_back: ['sent back', 'amber'],
  unexplained: ['unexplained', 'flag'],
};
const METHOD = { allowlist: 'trusted sender', trusted_code: 'trusted code' };

export async function loadDecisions() {
  const r = await latest(
    'decisions',
    () => api('GET', '/api/v1/decisions?limit=100'),
    emptyOnFailure(['decisions-body', 'decisions-empty', 'Could not load the decisions.']),
  );
  if (!r) return;
  const list = Array.isArray(r.decisions) ? r.decisions : [];
  const unverified = typeof r.unverified_lines === 'number' ? r.unverified_lines : 0;
  setText($('decisions-unverified'), unverified ? `${plural(unverified, 'line')} of decisions.jsonl did not verify (written without the reviewer's key) and ${unverified === 1 ? 'is' : 'are'} not shown.` : '');
  $('decisions-unverified').hidden = unverified === 0;
  const key = JSON.stringify(list);
  if (key === state.decisionsKey) return;
  state.decisionsKey = key;
  const body = $('decisions-body');
  const y = window.scrollY;
  const rows = list.map(decisionRow);
  clear(body);
  add(body, rows);
  window.scrollTo(window.scrollX, y);
  $('decisions-table').hidden = list.length === 0;
  showEmpty($('decisions-empty'), list.length ? null : 'No decisions yet: every automatic approval and every job left waiting is recorded here.');
}

/** Today's decisions show the time only; older ones the date too. The title has both. */
function decisionTime(iso) {
  const d = parseTime(iso);
  if (!d) return h('span', { class: 'muted' }, iso ? String(iso) : '–');
  const full = absolute(d);
  const today = new Date();
  const sameDay = d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate();
  return h('time', { datetime: iso, title: full }, sameDay ? full.slice(11) : full.slice(0, 16));
}

/** A reason's text with each 64-hex signature shortened, with a copy button, as elsewhere. */
function reasonParts(text) {
  return text.split(/\b([0-9a-f]{64})\b/).map((part, i) => (i % 2 ? signatureEl(part) : part));
}

function shortUid(uid) {
  const s = String(uid || '');
  return s.length > 13 ? `${s.slice(0, 8)}…` : s;
}

function decisionRow(d) {
  const [label, kind] = OUTCOME[d.outcome] || [String(d.outcome || 'unknown'), 'ignore'];
  const method = d.method ? METHOD[d.method] || String(d.method) : null;
  return h('tr', { dataset: { uid: String(d.uid || ''), outcome: String(d.outcome || '') } },
    h('td', { 'data-label': 'Time' }, decisionTime(d.time)),
    h('td', { 'data-label': 'Outcome' }, badge(label, kind)),
    h('td', { 'data-label': 'Method' }, method || h('span', { class: 'muted' }, '–')),
    h('td', { 'data-label': 'Job', class: 'wrap' }, d.name ? String(d.name) : h('span', { class: 'muted' }, '(no name)')),
    h('td', { 'data-label': 'Sender', class: 'wrap' }, d.requester ? emailEl(d.requester) : h('span', { class: 'muted' }, 'unknown')),
    h('td', { 'data-label': 'UID' }, h('code', { class: 'uid hash', title: String(d.uid || ''), tabindex: '0' }, shortUid(d.uid))),
    h('td', { 'data-label': 'Reasons', class: 'wrap reasons-cell' }, Array.isArray(d.reasons) && d.reasons.length
      ? h('ul', { class: 'reasons-compact' }, d.reasons.map((x) => h('li', null, reasonParts(String(x)))))
      : h('span', { class: 'muted' }, '–')));
}
