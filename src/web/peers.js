// The Peers tab: peer requests waiting for the owner, approved and revoked peers.
import { ApiError, api, enc } from './client.js';
import { $, h, reconcile, setText, showEmpty, updateRow } from './dom.js';
import { emptyOnFailure, latest, notice, showError, withButton } from './notices.js';
import { emailEl, entryBadge, fingerprintEl, showInvalid, timeEl } from './widgets.js';

export async function loadPeers() {
  const r = await latest(
    'peers',
    () => api('GET', '/api/v1/peers'),
    emptyOnFailure(
      ['peer-pending-list', 'peer-pending-empty', 'Could not load the peer requests.'],
      ['peer-approved-list', 'peer-approved-empty', 'Could not load the peers.'],
    ),
  );
  if (r) renderPeers(r);
}

/** Only the count of waiting requests, for the tab (every few status ticks). */
export async function refreshPeerCount() {
  try {
    const r = await api('GET', '/api/v1/peers');
    setPeerCount(r);
  } catch (_) {
    // The status strip reports connection problems.
  }
}

function setPeerCount(r) {
  const n = r && Array.isArray(r.pending) ? r.pending.length : 0;
  setText($('tab-count-peers'), n ? String(n) : '');
}

function peerFp(p) {
  return JSON.stringify(p);
}

function renderPeers(r) {
  const pending = Array.isArray(r.pending) ? r.pending : [];
  const approved = Array.isArray(r.approved) ? r.approved : [];
  const revoked = Array.isArray(r.revoked) ? r.revoked : [];
  setPeerCount(r);
  const rows = (kind) => ({
    key: (p) => String(p.email),
    fp: peerFp,
    build: (p) => buildPeerRow(p, kind),
    update: (el, p) => updateRow(el, buildPeerRow(p, kind)),
  });
  reconcile($('peer-pending-list'), pending, rows('pending'));
  reconcile($('peer-approved-list'), approved, rows('approved'));
  reconcile($('peer-revoked-list'), revoked, rows('revoked'));
  showEmpty($('peer-pending-empty'), pending.length ? null : 'No peer requests are waiting for you.');
  showEmpty($('peer-approved-empty'), approved.length ? null : 'No approved peers yet.');
  $('peer-revoked').hidden = revoked.length === 0;
  setText($('peer-revoked-summary'), `Revoked peers (${revoked.length})`);

  const invalid = Array.isArray(r.invalid) ? r.invalid : [];
  showInvalid($('peer-invalid-list'), $('peer-invalid'), invalid);
}

function buildPeerRow(p, kind) {
  const email = String(p.email);
  let action = null;
  if (kind === 'pending') {
    action = h('button', { type: 'button', class: 'btn btn-primary approve-peer', 'aria-label': `Approve ${email} as a peer` }, 'Approve');
    action.addEventListener('click', () => approvePeer(email, action, false));
  } else if (kind === 'approved') {
    action = h('button', { type: 'button', class: 'btn btn-danger revoke', 'aria-label': `Revoke ${email}` }, 'Revoke');
    action.addEventListener('click', () => revokePeer(email, action));
  } else {
    action = h('button', { type: 'button', class: 'btn approve-peer', 'aria-label': `Approve ${email} as a peer again` }, 'Approve again');
    action.addEventListener('click', () => approvePeer(email, action, true));
  }
  const details = [];
  if (kind === 'pending') {
    details.push(h('span', null, 'Request file ', h('code', null, String(p.file || ''))));
    if (p.note) details.push(h('span', { class: 'warn-text' }, String(p.note)));
  } else {
    const when = p.at ? timeEl(p.at) : null;
    const verb = kind === 'approved' ? 'Approved' : 'Revoked';
    if (when || p.by) details.push(h('span', null, verb, when ? [' ', when] : null, p.by ? ` by ${p.by}` : null, p.reason ? ` (${p.reason})` : null));
    const shared = Array.isArray(p.shared) ? p.shared.map(String) : [];
    if (kind === 'approved') {
      details.push(shared.length
        ? h('span', null, 'Shared: ', shared.map((d, i) => [i ? ', ' : '', h('code', null, d)]))
        : h('span', { class: 'muted' }, 'No dataset shared by this app'));
      if (p.proof) details.push(h('span', { class: 'peer-proof' }, entryBadge(p.proof), p.proof.key ? fingerprintEl(String(p.proof.key)) : null));
    }
  }
  const message = typeof p.message === 'string' && p.message
    ? h('blockquote', { class: 'peer-message', title: 'Written by the requester: proves nothing' }, p.message)
    : null;
  return h('li', { class: `row peer-row peer-${kind}`, dataset: { peer: email } },
    h('div', { class: 'peer-main' },
      emailEl(email),
      h('div', { class: 'peer-details' }, details),
      message),
    action);
}

async function approvePeer(email, btn, again) {
  if (again && !window.confirm(`Approve ${email} as a peer again?\n\nThe folders in peers.auto_share_datasets are shared with them again.`)) return;
  await withButton(btn, async () => {
    const r = await api('POST', `/api/v1/peers/approve/${enc(email)}`);
    const shared = r && Array.isArray(r.shared) && r.shared.length ? ` Shared: ${r.shared.join(', ')}.` : '';
    notice(r && r.approved === false ? `${email} was already a peer.` : `Approved ${email} as a peer.${shared}`);
    reportPeerProblems(r);
    await loadPeers();
    const next = document.querySelector(`#peer-approved-list li[data-peer="${CSS.escape(email)}"] button.revoke`);
    if (next && !btn.isConnected) next.focus();
  });
}

async function revokePeer(email, btn) {
  if (!window.confirm(`Revoke ${email} as a peer?\n\nThe read grants this app added for them on your datasets are removed, and jobs from them no longer match peers_only rule sets.`)) return;
  const li = btn.closest('li');
  const nextFocus = li && (li.nextElementSibling || li.previousElementSibling);
  await withButton(btn, async () => {
    try {
      const r = await api('DELETE', `/api/v1/peers/revoke/${enc(email)}`);
      const unshared = r && Array.isArray(r.unshared) && r.unshared.length ? ` No longer shared: ${r.unshared.join(', ')}.` : '';
      notice(`Revoked ${email}.${unshared}`);
      reportPeerProblems(r);
    } catch (err) {
      if (err.status !== 404) throw err;
      notice(`${email} was no longer an approved peer.`);
    }
    await loadPeers();
    const target = nextFocus && nextFocus.isConnected ? nextFocus.querySelector('button') : $('tab-peers');
    if (target && !btn.isConnected) target.focus();
  });
}

/** Problems the server met while sharing or unsharing (the change itself was made). */
function reportPeerProblems(r) {
  const problems = r && Array.isArray(r.problems) ? r.problems.map(String) : [];
  if (problems.length) showError(new ApiError(problems.join(' '), 'The peer change was made; fix these and the app retries at its next rescan.'));
}
