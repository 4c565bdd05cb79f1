// The Pending tab's bulk verdict: select every pending job matching the current filters, then
// reject them (or request changes) with one rationale and one confirmation. The server decides
// each job on its own (audited one by one) and never more than the count confirmed here.
import { api } from './client.js';
import { $, clear, h } from './dom.js';
import { plural } from './format.js';
import { showError, withButton } from './notices.js';
import { state } from './state.js';
import { refreshStatus } from './status.js';

const VERDICTS = {
  reject: ['Reject', 'Rejected'],
  request_changes: ['Request changes on', 'Requested changes on'],
};

// What was selected: the filters and the count shown when "select all matching" was clicked.
let selected = null;
let matching = 0;
let reload = async () => {};

/** Wires the bulk controls; `refresh` reloads the pending list after a verdict. */
export function initBulk(refresh) {
  reload = refresh;
  $('bulk-select').addEventListener('click', () => {
    if (selected) return unselect();
    selected = { filters: { ...state.filters }, count: matching };
    $('bulk-result').hidden = true;
    $('bulk-form').hidden = false;
    $('bulk-select').setAttribute('aria-pressed', 'true');
    $('bulk-select').textContent = `Selected: all ${matching.toLocaleString('en-US')} matching (unselect)`;
    $('bulk-rationale').focus();
  });
  for (const [verdict] of Object.entries(VERDICTS)) {
    $(`bulk-${verdict.replace('_', '-')}`).addEventListener('click', (ev) => decideAll(ev.currentTarget, verdict));
  }
}

/** Called with every refresh of the list: the count the selection offers. */
export function updateBulk(total) {
  matching = total;
  // The last result stays in view after the list empties, until the next selection.
  $('bulk-select').hidden = total === 0 && !selected;
  $('pending-bulk').hidden = $('bulk-select').hidden && $('bulk-result').hidden;
  // The filters changed since selecting: the selection no longer says what it would decide.
  if (selected && JSON.stringify(selected.filters) !== JSON.stringify(state.filters)) unselect();
  if (!selected) $('bulk-select').textContent = `Select all ${total.toLocaleString('en-US')} matching`;
}

function unselect() {
  selected = null;
  $('bulk-form').hidden = true;
  $('bulk-select').setAttribute('aria-pressed', 'false');
  $('bulk-select').textContent = `Select all ${matching.toLocaleString('en-US')} matching`;
}

/** "Reject 1,234 jobs from x@y?" */
function question(verdict, sel) {
  const f = sel.filters;
  const jobs = sel.count === 1 ? 'job' : 'jobs';
  let q = `${VERDICTS[verdict][0]} ${sel.count.toLocaleString('en-US')} ${jobs}`;
  q += f.sender ? ` from ${f.sender}` : ' from every sender';
  if (f.name) q += ` named like "${f.name}"`;
  if (f.max_age_hours !== '') q += ` from the last ${f.max_age_hours} hours`;
  return `${q}?`;
}

async function decideAll(button, verdict) {
  if (!selected) return;
  const rationale = $('bulk-rationale').value.trim();
  if (!rationale) {
    $('bulk-rationale').setCustomValidity('Say why, so the senders know what to fix.');
    $('bulk-rationale').reportValidity();
    return;
  }
  $('bulk-rationale').setCustomValidity('');
  if (!window.confirm(question(verdict, selected))) return;
  const f = selected.filters;
  const filter = { sender: f.sender, name: f.name };
  if (f.max_age_hours !== '') filter.max_age_hours = Number(f.max_age_hours);
  const body = { verdict, rationale, filter, limit: selected.count };
  const r = await withButton(button, () => api('POST', '/api/v1/jobs/decide', body));
  if (!r) return;
  showResult(verdict, r);
  $('bulk-rationale').value = '';
  unselect();
  refreshStatus();
  try {
    await reload();
  } catch (err) {
    showError(err);
  }
}

function showResult(verdict, r) {
  const box = $('bulk-result');
  clear(box);
  const decided = Number(r.decided) || 0;
  const refused = Number(r.refused) || 0;
  let text = `${VERDICTS[verdict][1]} ${plural(decided, 'job')}.`;
  if (refused) text += ` ${plural(refused, 'job')} refused:`;
  if (r.limit_reached) text += ' Jobs that arrived after selecting stay pending.';
  box.append(h('p', { class: 'bulk-summary' }, text));
  const refusals = (Array.isArray(r.results) ? r.results : []).filter((x) => x && x.result === 'refused');
  if (refusals.length) {
    box.append(h('ul', null, refusals.map((x) => h('li', null, h('code', null, String(x.uid)), `: ${x.reason || ''}`))));
  }
  if (r.results_omitted) box.append(h('p', { class: 'muted' }, `${r.results_omitted} more not listed.`));
  box.hidden = false;
}
