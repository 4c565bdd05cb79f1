// Job ages and expiries, and the relative times on the page (refreshed on every status tick).
import { h } from './dom.js';
import { absolute, ago, duration, parseTime } from './format.js';

function ageInfo(createdIso, timeoutSeconds, expiresIso) {
  const created = parseTime(createdIso);
  // The server computes the expiry (default timeout, the owner's cap, checked arithmetic);
  // none means the job never expires.
  const expires = parseTime(expiresIso);
  const timeout = typeof timeoutSeconds === 'number' && timeoutSeconds > 0 ? timeoutSeconds : null;
  const now = Date.now();
  const parts = [];
  let level = 'ok';
  if (created) parts.push(`${duration((now - created.getTime()) / 1000)} old`);
  else parts.push('age unknown');
  if (expires) {
    const left = (expires.getTime() - now) / 1000;
    if (left <= 0) {
      parts.push(`expired ${duration(-left)} ago`);
      level = 'expired';
    } else {
      parts.push(`expires in ${duration(left)}`);
      const total = created ? (expires.getTime() - created.getTime()) / 1000 : timeout;
      const frac = total ? left / total : null;
      if ((frac !== null && frac <= 0.1) || left <= 3600) level = 'red';
      else if ((frac !== null && frac <= 0.25) || left <= 3 * 3600) level = 'amber';
    }
  } else {
    parts.push('no timeout');
  }
  const title = [
    created ? `created ${absolute(created)}` : null,
    expires ? `expires ${absolute(expires)}` : null,
    timeout ? `timeout ${duration(timeout)}` : null,
  ].filter(Boolean).join(', ');
  return { text: parts.join(' · '), level, title };
}

export function ageBadge(job) {
  const el = h('span', {
    class: 'badge age',
    dataset: {
      created: job.created_at || '',
      timeout: job.timeout_seconds == null ? '' : String(job.timeout_seconds),
      expires: job.expires_at || '',
    },
  });
  paintAge(el);
  return el;
}

function paintAge(el) {
  const t = el.dataset.timeout ? Number(el.dataset.timeout) : null;
  const info = ageInfo(el.dataset.created || null, t, el.dataset.expires || null);
  if (el.textContent !== info.text) el.textContent = info.text;
  el.title = info.title;
  el.dataset.level = info.level;
}

export function tickTimes() {
  document.querySelectorAll('.badge.age').forEach(paintAge);
  document.querySelectorAll('time[data-rel]').forEach((t) => {
    const text = ago(parseTime(t.dataset.rel));
    if (t.textContent !== text) t.textContent = text;
  });
}
