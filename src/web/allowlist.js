// The Allowlist tab: trusted senders, added and removed.
import { api, enc } from './client.js';
import { $, h, reconcile, showEmpty, updateRow } from './dom.js';
import { emptyOnFailure, latest, notice, withButton } from './notices.js';
import { state } from './state.js';
import { refreshStatus } from './status.js';
import { badge, entryBadge, fingerprintEl, showInvalid } from './widgets.js';

const LOCAL_RE = /^[a-z0-9._%+-]{1,64}$/;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Mirrors the server's rule; returns an error message, or null when `email` is acceptable. */
function emailProblem(email) {
  if (!email) return 'Enter an email address, like name@example.org.';
  const at = email.indexOf('@');
  if (at < 0) return 'An email needs an @, like name@example.org.';
  if (email.indexOf('@', at + 1) >= 0) return 'An email has only one @.';
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (!LOCAL_RE.test(local)) return 'Before the @ use only letters, digits and . _ % + - (at most 64).';
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return 'Dots before the @ cannot lead, trail or repeat.';
  const labels = domain.split('.');
  if (labels.length < 2) return 'The domain needs a dot, like example.org.';
  if (domain.length > 253 || !labels.every((l) => LABEL_RE.test(l))) return 'The domain may hold only letters, digits, dots and hyphens (not at the start or end of a part).';
  return null;
}

export function setAllowMsg(text, kind) {
  const el = $('allow-msg');
  el.textContent = text || '';
  el.dataset.kind = kind || '';
  $('allow-email').setAttribute('aria-invalid', kind === 'error' ? 'true' : 'false');
}

export async function loadAllowlist() {
  const r = await latest(
    'allowlist',
    () => api('GET', '/api/v1/allowlist'),
    emptyOnFailure(['allow-list', 'allow-empty', 'Could not load the allowlist.']),
  );
  if (r) renderAllowlist(r);
}

function renderAllowlist(r) {
  const entries = Array.isArray(r.entries) ? r.entries.filter((e) => e && typeof e.email === 'string') : [];
  const emails = entries.map((e) => e.email);
  reconcile($('allow-list'), entries, {
    key: (e) => e.email,
    fp: (e) => JSON.stringify([e.email === state.owner, e.mode, e.proof]),
    build: buildAllowRow,
    update: (el, e) => updateRow(el, buildAllowRow(e)),
  });
  showEmpty($('allow-empty'), emails.length ? null
    : 'The allowlist is empty: jobs from any sender wait for you unless their code is trusted.');

  const invalid = Array.isArray(r.invalid) ? r.invalid : [];
  showInvalid($('allow-invalid-list'), $('allow-invalid'), invalid);
}

function buildAllowRow(entry) {
  const email = entry.email;
  const proof = entry.proof || {};
  const btn = h('button', { type: 'button', class: 'btn btn-danger remove', 'aria-label': `Remove ${email}` }, 'Remove');
  btn.addEventListener('click', () => removeEmail(email, btn));
  return h('li', { class: 'row', dataset: { email, proof: String(proof.status || '') } },
    h('span', { class: 'email' }, email),
    email === state.owner ? badge('you', 'ignore') : null,
    badge(`proof ${entry.mode === 'required' ? 'required' : 'optional'}`, entry.mode === 'required' ? 'approve' : 'ignore',
      entry.mode === 'required' ? 'Approved as this sender only with a proof made with the pinned key'
        : 'Unsigned jobs are approved, labelled unverified: anyone can claim this address'),
    entryBadge(proof),
    proof.key ? fingerprintEl(String(proof.key)) : null,
    btn);
}

export async function addEmail(ev) {
  ev.preventDefault();
  const input = $('allow-email');
  const email = input.value.trim().toLowerCase();
  const problem = emailProblem(email);
  if (problem) {
    setAllowMsg(problem, 'error');
    input.focus();
    return;
  }
  setAllowMsg('', '');
  await withButton($('allow-add'), async () => {
    try {
      const r = await api('POST', `/api/v1/allowlist/add/${enc(email)}`);
      input.value = '';
      const shown = r && r.email ? String(r.email) : email;
      setAllowMsg(r && r.added === false ? `${shown} was already on the allowlist.` : `Added ${shown}. Their pending jobs are approved shortly.`, 'ok');
    } catch (err) {
      if (err.network) throw err;
      setAllowMsg(err.hint ? `${err.message}: ${err.hint}` : err.message, 'error');
      input.focus();
      return;
    }
    await loadAllowlist();
    refreshStatus();
  });
}

async function removeEmail(email, btn) {
  if (!window.confirm(`Remove ${email} from the allowlist?\n\nTheir future jobs will wait for you.`)) return;
  const li = btn.closest('li');
  const nextFocus = li && (li.nextElementSibling || li.previousElementSibling);
  await withButton(btn, async () => {
    try {
      await api('DELETE', `/api/v1/allowlist/remove/${enc(email)}`);
      notice(`Removed ${email} from the allowlist.`);
    } catch (err) {
      if (err.status !== 404) throw err;
      notice(`${email} was no longer on the allowlist.`);
    }
    await loadAllowlist();
    const target = nextFocus && nextFocus.isConnected ? nextFocus.querySelector('button.remove') : $('allow-email');
    if (target) target.focus();
    refreshStatus();
  });
}
