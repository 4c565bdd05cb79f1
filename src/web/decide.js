// Verdicts on pending jobs: Approve, Reject and Request changes, with the rationale form.
import { api, enc } from './client.js';
import { $, h, setVisible } from './dom.js';
import { notice, showError } from './notices.js';
import { refreshStatus } from './status.js';

const MAX_RATIONALE = 4000; // characters, as the server checks

const VERDICTS = {
  approve: { done: 'Approved', moved: 'approved' },
  reject: {
    title: 'Reject',
    confirm: 'Reject job',
    done: 'Rejected',
    moved: 'rejected',
    help: 'The job moves to rejected/, and the requester sees your rationale as its error message.',
    placeholder: 'What is wrong with this job, e.g. "it reads the raw table"',
  },
  request_changes: {
    title: 'Request changes to',
    confirm: 'Request changes',
    done: 'Changes requested',
    moved: 'rejected',
    help: 'The job moves to rejected/ with an error message starting "changes requested:" and your rationale, so the requester knows what to fix and can send it again.',
    placeholder: 'What to change, e.g. "aggregate to groups of 10 or more rows"',
  },
};

let formIds = 0;

/**
 * Approve / Reject / Request changes for one job card, and the inline rationale form for the
 * latter two. Only the card's `.card-main` is rebuilt by refreshes; these controls (and an
 * open form, with what was typed) are kept. `reload` loads the pending list again: after a
 * refused verdict, and once a decided card has gone.
 */
export function decideControls(el, reload) {
  const n = ++formIds;
  const ids = { form: `verdict-form-${n}`, title: `verdict-title-${n}`, text: `rationale-${n}`, help: `verdict-help-${n}`, msg: `verdict-msg-${n}` };
  const approve = h('button', { type: 'button', class: 'btn btn-approve approve' }, 'Approve');
  const reject = h('button', { type: 'button', class: 'btn btn-danger reject', 'aria-expanded': 'false', 'aria-controls': ids.form }, 'Reject…');
  const changes = h('button', { type: 'button', class: 'btn request-changes', 'aria-expanded': 'false', 'aria-controls': ids.form }, 'Request changes…');
  const buttons = h('div', { class: 'decide-buttons', role: 'group', 'aria-label': 'Decide this job' }, approve, reject, changes);

  const title = h('h4', { class: 'verdict-title', id: ids.title });
  const textarea = h('textarea', {
    id: ids.text, class: 'rationale', name: 'rationale', rows: '3', maxlength: String(MAX_RATIONALE),
    required: true, 'aria-required': 'true', 'aria-describedby': `${ids.help} ${ids.msg}`, spellcheck: 'true',
  });
  const help = h('p', { class: 'verdict-help', id: ids.help });
  const gone = h('p', { class: 'verdict-gone', hidden: true },
    'This job is no longer in the pending list: it was decided elsewhere, or the filters now hide it. Confirming will most likely be refused.');
  const msg = h('p', { class: 'form-msg', id: ids.msg, 'aria-live': 'polite' });
  const confirmBtn = h('button', { type: 'submit', class: 'btn btn-danger confirm-verdict' }, 'Confirm');
  const cancel = h('button', { type: 'button', class: 'btn btn-quiet cancel-verdict' }, 'Cancel');
  const form = h('form', { class: 'verdict-form', id: ids.form, hidden: true, 'aria-labelledby': ids.title, novalidate: true },
    title,
    h('label', { for: ids.text, class: 'rationale-label' }, 'Rationale ', h('span', { class: 'muted' }, '(required; the requester sees it)')),
    textarea, help, gone, msg,
    h('div', { class: 'verdict-buttons' }, confirmBtn, cancel,
      h('span', { class: 'kbd-hint muted' }, 'Ctrl+Enter confirms, Esc cancels')));
  const changed = h('p', { class: 'job-changed', role: 'status', hidden: true },
    'This job changed while it was shown here (its signature is new). Read it again before deciding.');
  const done = h('p', { class: 'decided-msg', role: 'status', hidden: true });

  let verdict = null; // the verdict of the open form
  let busy = false;

  const openers = { reject, request_changes: changes };
  const isOpen = () => !form.hidden;

  function setMsg(text) {
    msg.textContent = text || '';
    msg.dataset.kind = text ? 'error' : '';
    textarea.setAttribute('aria-invalid', text ? 'true' : 'false');
  }

  function open(v) {
    verdict = v;
    const spec = VERDICTS[v];
    const job = el._job || {};
    setVisible(title, `${spec.title} "${job.name || 'unnamed job'}"`);
    help.textContent = spec.help;
    textarea.placeholder = spec.placeholder;
    confirmBtn.textContent = spec.confirm;
    confirmBtn.classList.toggle('btn-danger', v === 'reject');
    confirmBtn.classList.toggle('btn-primary', v !== 'reject');
    form.dataset.verdict = v;
    for (const [k, b] of Object.entries(openers)) b.setAttribute('aria-expanded', k === v ? 'true' : 'false');
    setMsg('');
    form.hidden = false;
    el.classList.add('deciding');
    textarea.focus();
  }

  function close({ focus = true } = {}) {
    const opener = verdict ? openers[verdict] : null;
    form.hidden = true;
    verdict = null;
    for (const b of Object.values(openers)) b.setAttribute('aria-expanded', 'false');
    el.classList.remove('deciding');
    setMsg('');
    if (el.classList.contains('gone')) {
      // It left the list while the form was open: now it can go.
      focusAfter(el);
      el.remove();
      return;
    }
    if (focus && opener) opener.focus();
  }

  function setBusy(on) {
    busy = on;
    for (const b of [approve, reject, changes, confirmBtn]) b.disabled = on;
    el.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  async function send(v, rationale) {
    if (busy) return;
    const job = el._job || {};
    const body = { verdict: v, signature: job.signature == null ? null : String(job.signature), status: 'pending' };
    if (rationale !== undefined) body.rationale = rationale;
    const hadFocus = el.contains(document.activeElement);
    setBusy(true);
    try {
      await api('POST', `/api/v1/jobs/${enc(el.dataset.uid)}/decide`, body);
    } catch (err) {
      setBusy(false);
      showError(err);
      if (!err.network) {
        await reload();
        refreshStatus();
      }
      if (hadFocus && el.isConnected && !el.contains(document.activeElement)) {
        (isOpen() ? textarea : approve).focus();
      } else if (hadFocus && !el.isConnected) {
        $('error-dismiss').focus();
      }
      return;
    }
    decided(v, job);
  }

  function decided(v, job) {
    const spec = VERDICTS[v];
    const name = job.name ? `"${job.name}"` : 'The job';
    const hadFocus = el.contains(document.activeElement);
    form.hidden = true;
    buttons.hidden = true;
    changed.hidden = true;
    el.classList.remove('deciding');
    el.classList.add('decided');
    el.dataset.decided = v;
    done.textContent = `${spec.done}: moved to ${spec.moved}/.`;
    done.hidden = false;
    notice(`${spec.done} ${name}${job.requester ? ` from ${job.requester}` : ''}.`);
    if (hadFocus) focusAfter(el);
    refreshStatus();
    setTimeout(() => {
      if (el.isConnected) el.remove();
      reload();
    }, 1200);
  }

  approve.addEventListener('click', () => send('approve'));
  reject.addEventListener('click', () => (verdict === 'reject' ? close() : open('reject')));
  changes.addEventListener('click', () => (verdict === 'request_changes' ? close() : open('request_changes')));
  cancel.addEventListener('click', () => close());
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!verdict || busy) return;
    const text = textarea.value.trim();
    if (!text) {
      setMsg('Write a rationale: the requester sees it and learns what to fix.');
      textarea.focus();
      return;
    }
    if ([...text].length > MAX_RATIONALE) {
      setMsg(`Keep the rationale under ${MAX_RATIONALE} characters.`);
      textarea.focus();
      return;
    }
    setMsg('');
    send(verdict, text);
  });
  form.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      close();
    } else if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit ? form.requestSubmit(confirmBtn) : confirmBtn.click();
    }
  });
  textarea.addEventListener('input', () => {
    if (msg.dataset.kind) setMsg('');
  });

  return {
    buttons,
    form,
    changed,
    done,
    isOpen,
    label(job) {
      // A job that is not this owner's to decide (addressed to someone else...) gets no buttons.
      buttons.hidden = job.verdict === 'ignore' || el.classList.contains('decided');
      // Not read yet, so no signature to approve: approving waits until it has been reviewed.
      approve.hidden = !!job.being_reviewed;
      const what = `"${job.name || 'unnamed job'}" from ${job.requester || 'an unknown sender'}`;
      approve.setAttribute('aria-label', `Approve ${what}`);
      reject.setAttribute('aria-label', `Reject ${what}`);
      changes.setAttribute('aria-label', `Request changes to ${what}`);
      if (isOpen()) setVisible(title, `${VERDICTS[verdict].title} "${job.name || 'unnamed job'}"`);
    },
    setChanged(on) {
      changed.hidden = !on || el.classList.contains('decided');
    },
    setGone(on) {
      el.classList.toggle('gone', on);
      gone.hidden = !on;
    },
  };
}

/** Moves keyboard focus off a card that is about to go: to the next card, or the list. */
function focusAfter(el) {
  let next = el.nextElementSibling;
  while (next && next.classList.contains('decided')) next = next.nextElementSibling;
  let prev = el.previousElementSibling;
  while (prev && prev.classList.contains('decided')) prev = prev.previousElementSibling;
  const target = next || prev;
  if (target) {
    target.focus();
  } else {
    const summary = $('pending-summary');
    summary.setAttribute('tabindex', '-1');
    summary.focus();
  }
}
