// Reviewer groups on a pending job's card: the votes so far (approval.reviewer_groups), the
// approvals still needed and who has not voted. Hidden on datasites without reviewer groups.
import { api, enc } from './client.js';
import { clear, h } from './dom.js';
import { plural } from './format.js';
import { badge } from './widgets.js';

const VOTE = {
  approve: ['approves', 'approve'],
  reject: ['rejects', 'flag'],
  request_changes: ['requests changes', 'wait'],
};
const ANSWER = { counted: 'counted', applied: 'applied', refused: 'refused' };
// Without reviewer groups every card would ask for nothing every poll: ask again only a minute
// after an answer that showed none.
const QUIET_MS = 60000;
let quietUntil = 0;

/** The votes block of one job card; `refresh()` loads it again (it keeps its last content on failure). */
export function votesPanel(uid) {
  const el = h('div', { class: 'votes', hidden: true, 'aria-live': 'polite' });
  let key = '';
  async function refresh() {
    if (el.hidden && Date.now() < quietUntil) return;
    let r;
    try {
      r = await api('GET', `/api/v1/jobs/${enc(uid)}/votes`);
    } catch (_) {
      return;
    }
    const next = JSON.stringify(r);
    if (next === key) return;
    key = next;
    render(el, r);
  }
  return { el, refresh };
}

function render(el, r) {
  clear(el);
  const votes = Array.isArray(r.votes) ? r.votes : [];
  const hasGroups = r.groups && Object.keys(r.groups).length > 0;
  el.hidden = !hasGroups && votes.length === 0;
  if (el.hidden) {
    quietUntil = Date.now() + QUIET_MS;
    return;
  }
  quietUntil = 0;
  const needed = typeof r.needed === 'number' ? r.needed : 0;
  const required = typeof r.required_approvals === 'number' ? r.required_approvals : 1;
  const notVoted = Array.isArray(r.not_voted) ? r.not_voted : [];
  const summary = needed > 0
    ? `Reviewers: ${plural(needed, 'more approval')} needed (${required} required)`
    : `Reviewers: ${required} approval${required === 1 ? '' : 's'} required`;
  el.append(
    h('p', { class: 'votes-title' }, summary, notVoted.length ? ` · not voted yet: ${notVoted.join(', ')}` : ''),
    votes.length
      ? h('ul', { class: 'votes-list' }, votes.map(voteItem))
      : h('p', { class: 'muted' }, 'No reviewer has voted yet.'));
}

function voteItem(v) {
  const [text, kind] = VOTE[v.verdict] || [String(v.verdict || '?'), 'ignore'];
  const status = ANSWER[v.status] || 'not read yet';
  return h('li', { dataset: { reviewer: String(v.reviewer || ''), status: String(v.status || '') } },
    h('span', { class: 'email' }, String(v.reviewer || '?')), ' ',
    badge(text, kind), ' ',
    badge(v.attested ? 'attested' : 'by folder name', v.attested ? 'approve' : 'ignore',
      v.attested ? 'signed with the reviewer\'s identity key' : 'the reviewer\'s folder name, proven by the SyftBox server'),
    ` ${status}`,
    v.rationale ? `: ${v.rationale}` : '',
    v.status === 'refused' && v.reason ? h('span', { class: 'muted' }, ` (${v.reason})`) : '');
}
