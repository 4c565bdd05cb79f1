// The Trusted code tab: trusted code, and the history of completed jobs to mark trusted.
import { api, enc } from './client.js';
import { $, h, reconcile, showEmpty } from './dom.js';
import { plural } from './format.js';
import { emptyOnFailure, latest, notice, withButton } from './notices.js';
import { refreshStatus } from './status.js';
import { badge, codeToggle, field, signatureEl, tagsEl, timeEl } from './widgets.js';

export async function loadTrusted() {
  const both = await latest(
    'trusted',
    () => Promise.all([
      api('GET', '/api/v1/trusted-code'),
      api('GET', '/api/v1/trusted-code/history'),
      // What each pattern did (from the audit chain); the list still shows without it.
      api('GET', '/api/v1/trusted-code/usage').catch(() => ({ usage: [] })),
    ]),
    emptyOnFailure(
      ['trusted-list', 'trusted-empty', 'Could not load the trusted code.'],
      ['history-list', 'history-empty', 'Could not load the history.'],
    ),
  );
  if (!both) return;
  const [trusted, history, usage] = both;
  const used = new Map((Array.isArray(usage.usage) ? usage.usage : []).map((u) => [String(u.signature), u]));
  const t = (Array.isArray(trusted.trusted) ? trusted.trusted : [])
    .map((r) => ({ ...r, usage: used.get(String(r.signature)) || null }));
  const hist = Array.isArray(history.history) ? history.history : [];
  reconcile($('trusted-list'), t, { key: (r) => String(r.signature), fp: recordFp, build: (r) => buildRecord(r, 'trusted'), update: (el, r) => updateRecord(el, r, 'trusted') });
  reconcile($('history-list'), hist, { key: (r) => String(r.signature), fp: recordFp, build: (r) => buildRecord(r, 'history'), update: (el, r) => updateRecord(el, r, 'history') });
  showEmpty($('trusted-empty'), t.length ? null
    : 'No trusted code yet: read a job in the history below and mark its code trusted.');
  showEmpty($('history-empty'), hist.length ? null
    : 'No completed jobs recorded yet: jobs appear here once they complete, with their code.');
}

function recordFp(r) {
  return JSON.stringify([r.name, r.description, r.tags, r.requesters, r.uids, r.first_seen, r.last_seen, r.marked_at, r.trusted, r.usage]);
}

function buildRecord(rec, kind) {
  const el = h('li', { class: `card record record-${kind}`, tabindex: '-1', dataset: { signature: String(rec.signature), kind } });
  el._record = rec;
  const code = codeToggle(async () => el._record.code_files);
  el.append(recordMain(rec, kind), h('div', { class: 'card-code' }, code.btn, code.panel));
  el.classList.toggle('is-trusted', kind === 'history' && rec.trusted === true);
  return el;
}

function updateRecord(el, rec, kind) {
  el._record = rec;
  const main = el.querySelector(':scope > .card-main');
  const focusedInside = main && main.contains(document.activeElement);
  const next = recordMain(rec, kind);
  if (main) main.replaceWith(next);
  else el.prepend(next);
  if (focusedInside) {
    const btn = next.querySelector('button.mark, button.unmark');
    (btn || el).focus();
  }
  el.classList.toggle('is-trusted', kind === 'history' && rec.trusted === true);
}

function recordMain(rec, kind) {
  const sig = String(rec.signature);
  const requesters = Array.isArray(rec.requesters) ? rec.requesters.map(String) : [];
  const uids = Array.isArray(rec.uids) ? rec.uids.map(String) : [];
  let action;
  if (kind === 'trusted') {
    action = h('button', { type: 'button', class: 'btn unmark', 'aria-label': `Unmark the code of ${rec.name || sig} as trusted` }, 'Unmark');
    action.addEventListener('click', () => unmark(sig, rec.name, action));
  } else if (rec.trusted === true) {
    action = badge('Trusted', 'approve', 'Jobs with exactly this code are approved automatically');
  } else {
    action = h('button', { type: 'button', class: 'btn btn-primary mark', 'aria-label': `Mark the code of ${rec.name || sig} trusted` }, 'Mark trusted');
    action.addEventListener('click', () => mark(sig, rec.name, action));
  }
  return h('div', { class: 'card-main' },
    h('header', { class: 'card-head' },
      h('h4', { class: 'job-name' }, rec.name ? String(rec.name) : h('span', { class: 'muted' }, '(no name)')),
      h('span', { class: 'badges' }, action)),
    h('dl', { class: 'meta' },
      field('Requesters', requesters.length
        ? requesters.map((r, i) => [i ? ', ' : '', h('span', { class: 'email' }, r)])
        : h('span', { class: 'muted' }, 'none recorded')),
      field('Jobs', h('span', { title: uids.join('\n') || undefined }, plural(uids.length, 'uid'))),
      kind === 'trusted' && rec.marked_at ? field('Marked', timeEl(rec.marked_at), markedBy(rec.usage)) : null,
      kind === 'trusted' ? field('Approved', approvedEl(rec.usage)) : null,
      field('Last seen', rec.last_seen ? timeEl(rec.last_seen) : h('span', { class: 'muted' }, 'never')),
      Array.isArray(rec.tags) && rec.tags.length ? field('Tags', tagsEl(rec.tags)) : null,
      field('Signature', signatureEl(sig))),
    rec.description ? h('p', { class: 'description' }, String(rec.description)) : null);
}

/** Who marked a pattern, from the audit chain: " by web". */
function markedBy(usage) {
  return usage && usage.marked_by ? h('span', { class: 'marked-by' }, ` by ${usage.marked_by}`) : null;
}

/** How many jobs a pattern approved, and the last one. */
function approvedEl(usage) {
  if (!usage || !usage.approved) return h('span', { class: 'muted approved-count' }, 'no job yet');
  return h('span', { class: 'approved-count' }, plural(usage.approved, 'job'),
    usage.last_uid ? [', last ', h('code', { class: 'uid' }, String(usage.last_uid))] : null,
    usage.last_at ? [' ', timeEl(usage.last_at)] : null);
}

async function mark(sig, name, btn) {
  const what = name ? `"${name}"` : 'this code';
  if (!window.confirm(`Mark the code of ${what} trusted?\n\nAny job with exactly this name, description, tags and code will be approved automatically, whoever sends it.`)) return;
  await withButton(btn, async () => {
    const r = await api('POST', `/api/v1/trusted-code/mark/${enc(sig)}`);
    notice(r && r.added === false ? 'This code was already trusted.' : 'Code marked trusted. Matching pending jobs are approved shortly.');
    await loadTrusted();
    refreshStatus();
  });
}

async function unmark(sig, name, btn) {
  await withButton(btn, async () => {
    try {
      await api('DELETE', `/api/v1/trusted-code/unmark/${enc(sig)}`);
      notice(`The code of ${name ? `"${name}"` : 'this job'} is no longer trusted.`);
    } catch (err) {
      if (err.status !== 404) throw err;
      notice('That code was no longer trusted.');
    }
    await loadTrusted();
    refreshStatus();
  });
}
