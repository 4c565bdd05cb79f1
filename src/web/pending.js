// The Pending tab: the job list, its filters and paging, and each job card.
import { ageBadge } from './ages.js';
import { api, enc } from './client.js';
import { updateBulk } from './bulk.js';
import { decideControls } from './decide.js';
import { diffView } from './diff.js';
import { $, h, reconcile, showEmpty } from './dom.js';
import { plural } from './format.js';
import { emptyOnFailure, latest } from './notices.js';
import { restartDataLoop } from './polling.js';
import { PAGE, state } from './state.js';
import { votesPanel } from './votes.js';
import { badge, codeToggle, field, reasonsEl, signatureEl, tagsEl } from './widgets.js';

const VERDICT = {
  wait: ['Waits for you', 'wait'],
  flag: ['Flagged', 'flag'],
  approve: ['Would be approved', 'approve'],
  ignore: ['Ignored', 'ignore'],
};
// A job shown from the queue's index before anything has read it (it has just arrived).
const BEING_REVIEWED = ['Being reviewed', 'ignore'];

function filterQuery() {
  const q = new URLSearchParams({ status: 'pending' });
  const f = state.filters;
  if (f.sender) q.set('sender', f.sender);
  if (f.name) q.set('name', f.name);
  if (f.max_age_hours !== '') q.set('max_age_hours', f.max_age_hours);
  return q;
}

async function fetchPending(want) {
  const jobs = [];
  const seen = new Set();
  let total = 0;
  let offset = 0;
  for (let round = 0; round < 20; round++) {
    const q = filterQuery();
    q.set('offset', String(offset));
    q.set('limit', String(Math.max(1, want - offset)));
    const r = await api('GET', `/api/v1/jobs?${q}`);
    const page = Array.isArray(r.jobs) ? r.jobs : [];
    total = typeof r.total === 'number' ? r.total : page.length;
    for (const j of page) {
      if (j && j.uid != null && !seen.has(j.uid)) {
        seen.add(j.uid);
        jobs.push(j);
      }
    }
    offset += page.length;
    if (page.length === 0 || offset >= want || offset >= total) break;
  }
  return { jobs, total };
}

export async function loadPending() {
  const res = await latest(
    'pending',
    () => fetchPending(state.pendingWant),
    emptyOnFailure(['pending-list', 'pending-empty', 'Could not load the pending jobs.']),
  );
  if (res) renderPending(res.jobs, res.total);
}

function filtersActive() {
  const f = state.filters;
  return !!(f.sender || f.name || f.max_age_hours !== '');
}

function renderPending(jobs, total) {
  const list = $('pending-list');
  reconcile(list, jobs, {
    key: (j) => String(j.uid),
    fp: jobFp,
    build: buildJob,
    update: updateJob,
    // A job whose rationale form is open stays, with its text, even if it left the list.
    keep: (el) => !!(el._decide && el._decide.isOpen() && !el.classList.contains('decided')),
  });
  const shown = new Set(jobs.map((j) => String(j.uid)));
  for (const el of list.children) {
    if (el._decide) el._decide.setGone(!shown.has(el.dataset.key));
    if (el._votes && shown.has(el.dataset.key)) el._votes.refresh();
  }
  if (jobs.length === 0) {
    showEmpty($('pending-empty'), filtersActive()
      ? 'No pending jobs match these filters.'
      : 'No pending jobs: new jobs appear here as they arrive.');
  } else {
    showEmpty($('pending-empty'), null);
  }
  const flagged = jobs.filter((j) => j.verdict === 'flag').length;
  let summary = '';
  if (total > 0) {
    summary = jobs.length < total ? `Showing ${jobs.length} of ${total} pending jobs` : plural(total, 'pending job');
    if (flagged) summary += ` · ${flagged} flagged shown`;
    if (filtersActive()) summary += ' (filtered)';
  }
  const sumEl = $('pending-summary');
  if (sumEl.textContent !== summary) sumEl.textContent = summary;
  $('pending-more').hidden = !(jobs.length < total);
  updateBulk(total);
}

function jobFp(j) {
  return JSON.stringify([j.name, j.requester, j.description, j.tags, j.created_at, j.timeout_seconds, j.expires_at, j.signature, j.verdict, j.reasons, j.status, j.warnings, j.proof, !!j.being_reviewed]);
}

function buildJob(job) {
  const el = h('article', { class: 'job card', dataset: { uid: String(job.uid) } });
  const uid = String(job.uid);
  const code = codeToggle(async () => {
    const d = await api('GET', `/api/v1/jobs/${enc(uid)}?status=${enc(String(job.status || 'pending'))}`);
    return d.files;
  });
  el._code = code;
  el._job = job;
  const decide = decideControls(el, loadPending);
  el._decide = decide;
  // What changed since the closest known code: its summary under the job, its diff in a panel.
  const diff = diffView(uid, String(job.status || 'pending'), code);
  el._diff = diff;
  if (job.verdict === 'wait' || job.verdict === 'flag') diff.loadWhenShown(el);
  code.btn.addEventListener('click', () => decide.setChanged(false));
  el._votes = votesPanel(uid);
  diff.btn.addEventListener('click', () => decide.setChanged(false));
  el.append(jobMain(job), diff.summary, el._votes.el,
    h('div', { class: 'card-code card-foot' },
      h('div', { class: 'card-actions' }, diff.btn, code.btn, decide.buttons),
      decide.changed, decide.form, decide.done, diff.panel, code.panel));
  applyJobState(el, job);
  return el;
}

function updateJob(el, job) {
  const main = el.querySelector(':scope > .card-main');
  const focusedInside = main && main.contains(document.activeElement);
  const wasBeingReviewed = el.dataset.beingReviewed === 'true';
  const next = jobMain(job);
  if (main) main.replaceWith(next);
  else el.prepend(next);
  if (focusedInside) el.focus();
  el._job = job;
  // The code changed under an open panel: load it again, and say so next to the verdicts.
  if (el.dataset.codeSignature !== String(job.signature || '')) {
    el._code.reset();
    el._diff.reset();
    // A job shown before it was read had no signature: its first one is not a change.
    if (!wasBeingReviewed) el._decide.setChanged(true);
  }
  applyJobState(el, job);
}

function applyJobState(el, job) {
  el.dataset.verdict = String(job.verdict || '');
  el.dataset.codeSignature = String(job.signature || '');
  el.dataset.beingReviewed = String(!!job.being_reviewed);
  el.classList.toggle('flagged', job.verdict === 'flag');
  el.setAttribute('tabindex', '-1');
  el.setAttribute('aria-label', `${job.name || 'Unnamed job'} from ${job.requester || 'unknown sender'}`);
  el._decide.label(job);
}

// How far the sender is proven (SPEC section 9): a badge beside the sender.
const PROOF = {
  proven: ['proven sender', 'approve'],
  unverified: ['unverified sender', 'ignore'],
  none: ['unsigned: proof required', 'wait'],
  key_changed: ['identity key changed', 'flag'],
  invalid: ['proof does not match', 'flag'],
};

export function proofBadge(proof) {
  if (!proof || !PROOF[proof.status]) return null;
  const [text, kind] = PROOF[proof.status];
  const title = [proof.key, proof.reason].filter(Boolean).join(': ');
  return badge(text, kind, title || undefined);
}

function jobMain(job) {
  const [label, kind] = job.being_reviewed ? BEING_REVIEWED : VERDICT[job.verdict] || [String(job.verdict || 'unknown'), 'ignore'];
  const reasonsTitle = job.verdict === 'flag' ? 'Why it is flagged:' : job.verdict === 'wait' ? 'Why it waits:' : 'Reasons:';
  return h('div', { class: 'card-main' },
    h('header', { class: 'card-head' },
      h('h3', { class: 'job-name' }, job.name ? String(job.name) : h('span', { class: 'muted' }, '(no name)')),
      // Not read yet: its timeout is not known, so no expiry is shown either.
      h('span', { class: 'badges' }, badge(label, kind), job.being_reviewed ? null : ageBadge(job))),
    h('dl', { class: 'meta' },
      field('Sender', job.requester ? h('span', { class: 'email' }, String(job.requester)) : h('span', { class: 'muted' }, 'unknown'), proofBadge(job.proof)),
      field('UID', h('code', { class: 'uid' }, String(job.uid))),
      Array.isArray(job.tags) && job.tags.length ? field('Tags', tagsEl(job.tags)) : null,
      field('Signature', job.being_reviewed ? h('span', { class: 'muted' }, 'not read yet') : signatureEl(job.signature))),
    job.description ? h('p', { class: 'description' }, String(job.description)) : null,
    hiddenWarning(job.warnings),
    reasonsEl(job.reasons, reasonsTitle));
}

/** The banner of a job whose text holds invisible characters, saying where. */
function hiddenWarning(warnings) {
  if (!Array.isArray(warnings) || warnings.length === 0) return null;
  return h('div', { class: 'hidden-warning', role: 'note' },
    h('p', { class: 'hidden-warning-title' },
      'Invisible characters: this job holds characters that change how its text is shown (marked ⟨U+…⟩). What you read may not be what runs.'),
    h('ul', null, warnings.map((w) => h('li', null, `${w.place}: `,
      (Array.isArray(w.hits) ? w.hits : []).map((x) => `${x.code_point} ${x.name} at line ${x.line}, column ${x.column}`).join('; '),
      w.total > (w.hits || []).length ? ` and ${w.total - w.hits.length} more` : ''))));
}

// Filters: applied on Enter / Apply, and shortly after typing stops.
let filterTimer = null;
/** Reads the filter inputs into state; true when they changed, null when one is invalid. */
function readFilters(report) {
  const age = $('filter-max-age');
  let maxAge = age.value.trim();
  if ((maxAge !== '' && !/^\d+$/.test(maxAge)) || (maxAge === '' && age.validity.badInput)) {
    age.setCustomValidity('Enter a whole number of hours (0 or more).');
    age.setAttribute('aria-invalid', 'true');
    if (report) age.reportValidity();
    return null;
  }
  age.removeAttribute('aria-invalid');
  age.setCustomValidity('');
  if (maxAge !== '') maxAge = String(Number(maxAge));
  const next = { sender: $('filter-sender').value.trim(), name: $('filter-name').value.trim(), max_age_hours: maxAge };
  const changed = JSON.stringify(next) !== JSON.stringify(state.filters);
  state.filters = next;
  return changed;
}

/** Applies the filters shortly after typing stops. */
export function scheduleFilters() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => applyFilters(false), 600);
}

export function applyFilters(force) {
  clearTimeout(filterTimer);
  const changed = readFilters(force);
  if (changed === null || (changed === false && !force)) return;
  state.pendingWant = PAGE;
  loadPending();
  restartDataLoop(false);
}
