// The status strip: watcher health, queue counts, the audit chain, unexplained jobs, config.
import { api } from './client.js';
import { $, clear, h, setText } from './dom.js';
import { duration, plural } from './format.js';
import { latest } from './notices.js';
import { state } from './state.js';
import { timeEl } from './widgets.js';

export async function refreshStatus() {
  const s = await latest('status', () => api('GET', '/api/status'), (err) => {
    document.querySelector('.st-watcher').dataset.health = 'unknown';
    $('st-watcher').textContent = err.network ? 'Not connected' : 'Status unavailable';
  });
  if (s) renderStatus(s);
}

function num(v) {
  return typeof v === 'number' ? String(v) : '–';
}

function renderStatus(s) {
  state.owner = s.owner || null;
  $('owner').textContent = s.owner || 'unknown owner';
  const footBits = [];
  if (s.version) footBits.push(`syft-reviewer ${s.version}`);
  if (typeof s.uptime_seconds === 'number') footBits.push(`up ${duration(s.uptime_seconds)}`);
  if (s.datasite) footBits.push(String(s.datasite));
  $('foot-version').textContent = footBits.join(' · ');

  const w = s.watcher || {};
  const healthy = w.healthy === true;
  document.querySelector('.st-watcher').dataset.health = healthy ? 'ok' : 'bad';
  $('st-watcher').textContent = healthy ? 'Watching for jobs' : 'Watcher not healthy';
  const errEl = $('st-error');
  if (w.last_error) {
    errEl.textContent = `${healthy ? 'Last error' : 'Error'}: ${w.last_error}`;
    errEl.classList.toggle('bad', !healthy);
    errEl.hidden = false;
  } else {
    errEl.hidden = true;
  }
  const last = $('st-last-event');
  clear(last);
  last.appendChild(w.last_event ? timeEl(w.last_event) : h('span', { class: 'muted' }, 'none yet'));
  if (typeof w.events === 'number' || typeof w.rescans === 'number') {
    last.title = `${num(w.events)} events, ${num(w.rescans)} rescans`;
  }

  const pending = s.jobs && typeof s.jobs.pending === 'number' ? s.jobs.pending : null;
  $('st-pending').textContent = num(pending);
  $('st-waiting').textContent = num(s.waiting);
  $('st-flagged').textContent = num(s.flagged);
  $('st-approved').textContent = num(s.approved_since_start);
  $('st-flagged').parentElement.classList.toggle('nonzero', typeof s.flagged === 'number' && s.flagged > 0);
  if (s.jobs && typeof s.jobs === 'object') {
    document.querySelector('.st-counts').title = 'Queue: ' + Object.entries(s.jobs).map(([k, v]) => `${k} ${v}`).join(', ');
  }

  $('tab-count-pending').textContent = pending === null ? '' : String(pending);
  $('tab-count-allowlist').textContent = typeof s.allowlisted_senders === 'number' ? String(s.allowlisted_senders) : '';
  $('tab-count-trusted').textContent = typeof s.trusted_code === 'number' ? String(s.trusted_code) : '';

  renderAudit(s.audit);
  renderUnexplained(s.unexplained_jobs);
  renderConfig(s.config_error, s.rule_sets);

  const ignored = Array.isArray(s.ignored_store_files) ? s.ignored_store_files : [];
  const det = $('st-ignored');
  if (ignored.length) {
    $('st-ignored-summary').textContent = `${plural(ignored.length, 'ignored store file')}`;
    const list = $('st-ignored-list');
    const key = JSON.stringify(ignored);
    if (list.dataset.key !== key) {
      clear(list);
      for (const f of ignored) list.appendChild(h('li', null, h('code', null, String(f))));
      list.dataset.key = key;
    }
    det.hidden = false;
  } else {
    det.hidden = true;
  }
}

/** The audit chain's verification: a short item when it verifies, a red warning when not. */
function renderAudit(audit) {
  const item = $('st-audit');
  const warn = $('st-audit-warning');
  if (!audit || typeof audit !== 'object') {
    item.hidden = true;
    warn.hidden = true;
    return;
  }
  item.hidden = false;
  const reason = typeof audit.reason === 'string' ? audit.reason : '';
  item.title = reason;
  if (audit.valid === true) {
    const n = typeof audit.entries === 'number' ? audit.entries : 0;
    item.dataset.state = 'ok';
    setText($('st-audit-text'), `Audit chain: ${plural(n, 'entry', 'entries')}, verified`);
    warn.hidden = true;
    return;
  }
  item.dataset.state = 'bad';
  setText($('st-audit-text'), 'Audit chain: not verified');
  const at = typeof audit.first_break === 'number' ? ` at line ${audit.first_break} of audit/chain.jsonl (counting from 0)` : '';
  setText(warn, `Warning: the audit chain does not verify${at}: ${reason || 'no reason given'}. Entries may have been edited, removed or forged; run "syft-reviewer audit verify" for details.`);
  warn.hidden = false;
}

/** Jobs in approved/ or running/ that no decision explains: a red warning naming each. */
function renderUnexplained(list) {
  const warn = $('st-unexplained');
  const jobs = Array.isArray(list) ? list.filter((u) => u && typeof u === 'object') : [];
  if (!jobs.length) {
    warn.hidden = true;
    return;
  }
  const names = jobs.map((u) => `${String(u.uid)} in ${String(u.status)}/ (${String(u.why || '')})`).join('; ');
  setText(warn, `Warning: ${plural(jobs.length, 'job')} reached the queue's decided folders without a decision in the audit chain, and may run: ${names}. The reviewer did not put them there and left them as they are; find out who did.`);
  warn.hidden = false;
}

/** An invalid config.yaml (the server says where, and what is in force) and the rule sets in force. */
function renderConfig(configError, ruleSets) {
  const warn = $('st-config-error');
  if (typeof configError === 'string' && configError) {
    const key = configError;
    if (warn.dataset.key !== key) {
      clear(warn);
      // The server's message says the file is invalid, and where ("… at line 2, …": …).
      const lead = /^config\.yaml is invalid/i;
      const detail = lead.test(configError) ? configError.replace(lead, '') : `: ${configError}`;
      warn.append(
        h('strong', null, 'config.yaml is invalid'),
        h('span', { class: 'config-error-text' }, detail));
      warn.dataset.key = key;
    }
    warn.hidden = false;
  } else {
    warn.hidden = true;
    delete warn.dataset.key;
  }
  const names = Array.isArray(ruleSets) ? ruleSets.map(String) : [];
  const box = $('st-rule-sets');
  box.hidden = names.length === 0;
  setText($('st-rule-sets-list'), names.join(', '));
  box.title = names.length ? `Jobs that match one of these rule sets in config.yaml in full are approved: ${names.join(', ')}` : '';
}
