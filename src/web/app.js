// syft-reviewer browser UI. Plain JavaScript, no dependencies.
//
// Every server-provided string (job names, emails, file contents, reasons...) is written with
// textContent or as a text node: never innerHTML. Job contents are attacker-controlled.
'use strict';

(() => {
  // ---------------------------------------------------------------- constants and state

  const STATUS_EVERY_MS = 3000;
  const DATA_EVERY_MS = 5000;
  const PAGE = 50;
  const NETWORK_ERROR = 'Cannot reach syft-reviewer: is it running?';
  const TABS = ['pending', 'allowlist', 'trusted', 'peers', 'decisions'];
  const PEER_COUNT_EVERY = 5; // status ticks between updates of the Peers tab's request count
  const MAX_RATIONALE = 4000; // characters, as the server checks

  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const CSRF = csrfMeta ? csrfMeta.getAttribute('content') || '' : '';

  const state = {
    tab: 'pending',
    owner: null,
    pendingWant: PAGE, // how many pending jobs to show ("Load more" adds a page)
    filters: { sender: '', name: '', max_age_hours: '' },
    seq: {}, // per-view request sequence numbers: late answers to old requests are dropped
    decisionsKey: null,
  };

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- DOM helpers

  /** Creates an element. Strings among the children become text nodes (never parsed as HTML). */
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') add(el, [v]);
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    add(el, kids);
    return el;
  }

  function add(el, kids) {
    for (const kid of kids) {
      if (kid === null || kid === undefined || kid === false) continue;
      if (Array.isArray(kid)) add(el, kid);
      else if (kid instanceof Node) el.appendChild(kid);
      else el.appendChild(visibleText(String(kid)));
    }
  }

  // Characters that make text look like something else: controls, invisible format characters
  // (bidirectional controls, zero-width characters, every Cf), line/paragraph separators, Hangul
  // fillers, a carriage return not ending a line. The server warns on the same set (src/visible.rs).
  const HIDDEN = /\r(?!\n)|[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u115F\u1160\u2028\u2029\u3164\uFFA0]|\p{Cf}/gu;

  /** `text` as a fragment in which each hidden character is a visible ⟨U+XXXX⟩ mark. */
  function visibleText(text) {
    const frag = document.createDocumentFragment();
    let last = 0;
    HIDDEN.lastIndex = 0;
    for (const m of text.matchAll(HIDDEN)) {
      if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
      const cp = `U+${m[0].codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
      frag.appendChild(h('span', { class: 'hidden-char', title: `Invisible character ${cp}` }, `⟨${cp}⟩`));
      last = m.index + m[0].length;
    }
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  /** Replaces an element's text, showing hidden characters. */
  function setVisible(el, text) {
    clear(el);
    el.appendChild(visibleText(text));
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  /**
   * Updates `list` to show `items` in order, reusing the existing element of each key. An element
   * whose fingerprint is unchanged is left alone (so an open code panel, its scroll position and
   * keyboard focus survive a refresh); a changed one is passed to `update`. Elements are only
   * moved when the order changed.
   */
  function reconcile(list, items, { key, fp, build, update, keep }) {
    const old = new Map();
    for (const el of Array.from(list.children)) {
      if (el.dataset.key !== undefined) old.set(el.dataset.key, el);
      else el.remove();
    }
    // Elements no longer among the items that `keep` holds on to stay where they are (an open
    // form in them keeps its text and focus); the others are laid out around them.
    const stay = new Set();
    if (keep) {
      const keys = new Set(items.map(key));
      for (const [k, el] of old) if (!keys.has(k) && keep(el)) stay.add(el);
    }
    let prev = null;
    const kept = new Set();
    for (const item of items) {
      const k = key(item);
      const f = fp(item);
      let el = old.get(k);
      if (el && kept.has(el)) continue; // duplicate key: show once
      if (!el) {
        el = build(item);
        el.dataset.key = k;
      } else if (el.dataset.fp !== f) {
        update(el, item);
      }
      el.dataset.fp = f;
      kept.add(el);
      let want = prev ? prev.nextSibling : list.firstChild;
      while (want && stay.has(want)) want = want.nextSibling;
      if (want !== el) list.insertBefore(el, want);
      prev = el;
    }
    for (const el of old.values()) if (!kept.has(el) && !stay.has(el)) el.remove();
  }

  function showEmpty(el, text) {
    if (text) {
      el.textContent = text;
      el.hidden = false;
    } else {
      el.hidden = true;
    }
  }

  // ---------------------------------------------------------------- formatting

  /** Parses the server's naive local ISO timestamps ("2026-11-22T02:42:19.502718") as local time. */
  function parseTime(s) {
    if (!s || typeof s !== 'string') return null;
    const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(s.trim());
    if (!m) {
      const d = new Date(s);
      return Number.isNaN(d.getTime()) ? null : d;
    }
    const ms = m[7] ? Number((m[7] + '00').slice(0, 3)) : 0;
    if (m[8]) {
      const iso = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] || '00'}.${String(ms).padStart(3, '0')}${m[8]}`;
      const d = new Date(iso);
      return Number.isNaN(d.getTime()) ? null : d;
    }
    return new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0), ms);
  }

  /** "45s", "12 min", "3h", "3h 20m" (below 10 h), "2d", "2d 4h" (below 10 d). */
  function duration(seconds) {
    const s = Math.max(0, Math.round(Math.abs(seconds)));
    if (s < 60) return `${s}s`;
    const min = Math.floor(s / 60);
    if (min < 60) return `${min} min`;
    const hrs = Math.floor(min / 60);
    if (hrs < 48) {
      const rem = min % 60;
      return hrs < 10 && rem ? `${hrs}h ${rem}m` : `${hrs}h`;
    }
    const days = Math.floor(hrs / 24);
    const remH = hrs % 24;
    return days < 10 && remH ? `${days}d ${remH}h` : `${days}d`;
  }

  function ago(date) {
    if (!date) return '–';
    const sec = (Date.now() - date.getTime()) / 1000;
    if (sec < 5 && sec > -5) return 'just now';
    return sec >= 0 ? `${duration(sec)} ago` : `in ${duration(-sec)}`;
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  function absolute(date) {
    if (!date) return '';
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  /** A <time> element showing relative time, with the absolute time as its title. */
  function timeEl(iso, { relative = true } = {}) {
    const d = parseTime(iso);
    if (!d) return h('span', { class: 'muted' }, iso ? String(iso) : '–');
    return h('time', {
      datetime: iso,
      title: relative ? absolute(d) : ago(d),
      dataset: relative ? { rel: iso } : undefined,
    }, relative ? ago(d) : absolute(d));
  }

  function bytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '? B';
    if (n < 1024) return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
  }

  function shortHash(s) {
    if (!s) return '';
    const str = String(s);
    const bare = str.startsWith('sha256:') ? str.slice(7) : str;
    return bare.length > 14 ? `${bare.slice(0, 12)}…` : bare;
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many || one + 's'}`;
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(message, hint, status, network) {
      super(message);
      this.hint = hint || '';
      this.status = status || 0;
      this.network = !!network;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = CSRF;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (_) {
      throw new ApiError(NETWORK_ERROR, 'Start it with ./run.sh (or check that SyftBox runs the app), then this page reconnects by itself.', 0, true);
    }
    let data = null;
    const text = await res.text().catch(() => '');
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (!res.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : `Request failed: HTTP ${res.status} ${res.statusText || ''}`.trim();
      const hint = data && typeof data.hint === 'string' ? data.hint
        : res.status === 403 ? 'Reload the page to get a fresh security token.' : '';
      throw new ApiError(msg, hint, res.status, false);
    }
    if (data === null) throw new ApiError('The server sent an answer this page cannot read.', 'Reload the page; if it persists, check the app log.', res.status);
    return data;
  }

  const enc = encodeURIComponent;

  // ---------------------------------------------------------------- banner and notices

  let bannerNetwork = false;

  function showError(err) {
    const msg = err instanceof ApiError ? err.message : (err && err.message) || String(err);
    const hint = err instanceof ApiError ? err.hint : '';
    const banner = $('error');
    if (!banner.hidden && $('error-message').textContent === msg && $('error-hint').textContent === hint) return;
    $('error-message').textContent = msg;
    $('error-hint').textContent = hint;
    $('error-hint').hidden = !hint;
    banner.hidden = false;
    bannerNetwork = !!(err && err.network);
  }

  function hideError() {
    $('error').hidden = true;
    bannerNetwork = false;
  }

  /** Clears the banner when it only reported a lost connection that is now back. */
  function connectionBack() {
    if (bannerNetwork) hideError();
  }

  let noticeTimer = null;
  function notice(text) {
    const el = $('notice');
    el.textContent = text;
    el.classList.add('show');
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => {
      el.classList.remove('show');
      el.textContent = '';
    }, 4000);
  }

  /** Runs an action with `button` disabled; reports failures in the banner. */
  async function withButton(button, fn) {
    if (button) button.disabled = true;
    try {
      return await fn();
    } catch (err) {
      showError(err);
      return undefined;
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- shared widgets

  function badge(text, kind, title) {
    return h('span', { class: `badge badge-${kind}`, title }, text);
  }

  function copyButton(value, label) {
    const btn = h('button', { type: 'button', class: 'btn btn-tiny copy', title: `Copy ${label}`, 'aria-label': `Copy ${label}` }, 'Copy');
    btn.addEventListener('click', async () => {
      let ok = false;
      try {
        await navigator.clipboard.writeText(value);
        ok = true;
      } catch (_) {
        // No clipboard access: show the full value selected, so that Ctrl+C copies it.
        const code = btn.previousElementSibling;
        if (code) {
          code.textContent = value;
          const range = document.createRange();
          range.selectNodeContents(code);
          const sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
        }
      }
      btn.textContent = ok ? 'Copied' : 'Press Ctrl+C';
      setTimeout(() => {
        if (btn.isConnected) btn.textContent = 'Copy';
      }, 1500);
    });
    return btn;
  }

  /** A shortened signature with its full value in the title, plus a copy button. */
  function signatureEl(sig) {
    if (!sig) return h('span', { class: 'muted' }, 'none (the job is invalid)');
    return h('span', { class: 'sig' },
      h('code', { class: 'hash', title: sig, tabindex: '0' }, shortHash(sig)),
      copyButton(sig, 'signature'));
  }

  function field(label, ...value) {
    return [h('dt', null, label), h('dd', null, ...value)];
  }

  function reasonsEl(reasons, heading) {
    if (!Array.isArray(reasons) || reasons.length === 0) return null;
    return h('div', { class: 'reasons' },
      heading ? h('p', { class: 'reasons-title' }, heading) : null,
      h('ul', null, reasons.map((r) => h('li', null, String(r)))));
  }

  function tagsEl(tags) {
    if (!Array.isArray(tags) || tags.length === 0) return null;
    return h('span', { class: 'tags' }, tags.map((t) => h('span', { class: 'tag' }, String(t))));
  }

  /** The code files of a job or history record. */
  function filesEl(files) {
    if (!Array.isArray(files) || files.length === 0) return h('p', { class: 'empty' }, 'No code files.');
    return h('div', { class: 'files' }, files.map((f) => {
      const hasText = typeof f.text === 'string';
      return h('section', { class: 'file', dataset: { path: String(f.path) } },
        h('header', { class: 'file-head' },
          h('code', { class: 'file-path' }, String(f.path)),
          h('span', { class: 'file-size' }, bytes(f.size)),
          h('code', { class: 'hash file-sha', title: String(f.sha256 || ''), tabindex: '0' }, shortHash(f.sha256)),
          f.sha256 ? copyButton(String(f.sha256), `SHA-256 of ${f.path}`) : null),
        hasText
          ? h('pre', { class: 'code', tabindex: '0', 'aria-label': `Contents of ${f.path}` }, f.text)
          : h('p', { class: 'file-note' }, 'Binary or too large to show.'),
        hasText && f.truncated ? h('p', { class: 'file-note warn-text' }, 'Truncated: only the beginning of this file is shown.') : null);
    }));
  }

  let panelIds = 0;

  /**
   * A "View code" toggle and its panel. `load()` returns the files (it may fetch them); the panel
   * is filled on first open and kept (not re-rendered) by later refreshes.
   */
  function codeToggle(load) {
    const id = `code-panel-${++panelIds}`;
    const panel = h('div', { class: 'code-panel', id, hidden: true });
    const btn = h('button', { type: 'button', class: 'btn btn-quiet toggle-code', 'aria-expanded': 'false', 'aria-controls': id }, 'View code');
    let loaded = false;
    btn.addEventListener('click', async () => {
      const open = btn.getAttribute('aria-expanded') === 'true';
      if (open) {
        btn.setAttribute('aria-expanded', 'false');
        btn.textContent = 'View code';
        panel.hidden = true;
        return;
      }
      btn.setAttribute('aria-expanded', 'true');
      btn.textContent = 'Hide code';
      panel.hidden = false;
      if (loaded) return;
      clear(panel);
      panel.appendChild(h('p', { class: 'muted' }, 'Loading code…'));
      try {
        const files = await load();
        clear(panel);
        panel.appendChild(filesEl(files));
        loaded = true;
      } catch (err) {
        clear(panel);
        panel.appendChild(h('p', { class: 'inline-error' }, err.message, err.hint ? ` ${err.hint}` : ''));
      }
    });
    const reset = () => {
      loaded = false;
      if (btn.getAttribute('aria-expanded') === 'true') {
        btn.setAttribute('aria-expanded', 'false');
        btn.click();
      }
    };
    return { btn, panel, reset };
  }

  /**
   * Runs `load` for the view `name`. Only the latest call per view gets its answer: an older one
   * that finishes late returns undefined, so a slow answer never overwrites a newer one. On
   * failure of the latest call, the error is shown and `failed(err)` runs.
   */
  async function latest(name, load, failed) {
    const seq = (state.seq[name] = (state.seq[name] || 0) + 1);
    let r;
    try {
      r = await load();
    } catch (err) {
      if (seq === state.seq[name]) {
        showError(err);
        failed(err);
      }
      return undefined;
    }
    if (seq !== state.seq[name]) return undefined;
    connectionBack();
    return r;
  }

  /** A `failed` for `latest`: each `[list, placeholder, text]` list left empty says `text`. */
  function emptyOnFailure(...lists) {
    return () => {
      for (const [list, empty, text] of lists) {
        if (!$(list).children.length) showEmpty($(empty), text);
      }
    };
  }

  // ---------------------------------------------------------------- status strip

  async function refreshStatus() {
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

  /** An invalid config.yaml (the previous rules stay in force) and the rule sets in force. */
  function renderConfig(configError, ruleSets) {
    const warn = $('st-config-error');
    if (typeof configError === 'string' && configError) {
      const key = configError;
      if (warn.dataset.key !== key) {
        clear(warn);
        // The server's message may itself start by saying the file is invalid.
        const detail = configError.replace(/^config\.yaml is invalid:\s*/i, '');
        warn.append(
          h('strong', null, 'config.yaml is invalid; the previous rules stay in force until you fix it.'),
          ' ',
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

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  // ---------------------------------------------------------------- ages (refreshed on every status tick)

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

  function ageBadge(job) {
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

  function tickTimes() {
    document.querySelectorAll('.badge.age').forEach(paintAge);
    document.querySelectorAll('time[data-rel]').forEach((t) => {
      const text = ago(parseTime(t.dataset.rel));
      if (t.textContent !== text) t.textContent = text;
    });
  }

  // ---------------------------------------------------------------- Pending tab

  const VERDICT = {
    wait: ['Waits for you', 'wait'],
    flag: ['Flagged', 'flag'],
    approve: ['Would be approved', 'approve'],
    ignore: ['Ignored', 'ignore'],
  };

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

  async function loadPending() {
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
  }

  function jobFp(j) {
    return JSON.stringify([j.name, j.requester, j.description, j.tags, j.created_at, j.timeout_seconds, j.expires_at, j.signature, j.verdict, j.reasons, j.status, j.warnings]);
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
    const decide = decideControls(el);
    el._decide = decide;
    code.btn.addEventListener('click', () => decide.setChanged(false));
    el.append(jobMain(job),
      h('div', { class: 'card-code card-foot' },
        h('div', { class: 'card-actions' }, code.btn, decide.buttons),
        decide.changed, decide.form, decide.done, code.panel));
    applyJobState(el, job);
    return el;
  }

  function updateJob(el, job) {
    const main = el.querySelector(':scope > .card-main');
    const focusedInside = main && main.contains(document.activeElement);
    const next = jobMain(job);
    if (main) main.replaceWith(next);
    else el.prepend(next);
    if (focusedInside) el.focus();
    el._job = job;
    // The code changed under an open panel: load it again, and say so next to the verdicts.
    if (el.dataset.codeSignature !== String(job.signature || '')) {
      el._code.reset();
      el._decide.setChanged(true);
    }
    applyJobState(el, job);
  }

  function applyJobState(el, job) {
    el.dataset.verdict = String(job.verdict || '');
    el.dataset.codeSignature = String(job.signature || '');
    el.classList.toggle('flagged', job.verdict === 'flag');
    el.setAttribute('tabindex', '-1');
    el.setAttribute('aria-label', `${job.name || 'Unnamed job'} from ${job.requester || 'unknown sender'}`);
    el._decide.label(job);
  }

  // ---------------------------------------------------------------- verdicts on pending jobs

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
   * open form, with what was typed) are kept.
   */
  function decideControls(el) {
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
          await loadPending();
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
        loadPending();
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

  function jobMain(job) {
    const [label, kind] = VERDICT[job.verdict] || [String(job.verdict || 'unknown'), 'ignore'];
    const reasonsTitle = job.verdict === 'flag' ? 'Why it is flagged:' : job.verdict === 'wait' ? 'Why it waits:' : 'Reasons:';
    return h('div', { class: 'card-main' },
      h('header', { class: 'card-head' },
        h('h3', { class: 'job-name' }, job.name ? String(job.name) : h('span', { class: 'muted' }, '(no name)')),
        h('span', { class: 'badges' }, badge(label, kind), ageBadge(job))),
      h('dl', { class: 'meta' },
        field('Sender', job.requester ? h('span', { class: 'email' }, String(job.requester)) : h('span', { class: 'muted' }, 'unknown')),
        field('UID', h('code', { class: 'uid' }, String(job.uid))),
        Array.isArray(job.tags) && job.tags.length ? field('Tags', tagsEl(job.tags)) : null,
        field('Signature', signatureEl(job.signature))),
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

  function applyFilters(force) {
    clearTimeout(filterTimer);
    const changed = readFilters(force);
    if (changed === null || (changed === false && !force)) return;
    state.pendingWant = PAGE;
    loadPending();
    restartDataLoop(false);
  }

  // ---------------------------------------------------------------- Allowlist tab

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

  function setAllowMsg(text, kind) {
    const el = $('allow-msg');
    el.textContent = text || '';
    el.dataset.kind = kind || '';
    $('allow-email').setAttribute('aria-invalid', kind === 'error' ? 'true' : 'false');
  }

  async function loadAllowlist() {
    const r = await latest(
      'allowlist',
      () => api('GET', '/api/v1/allowlist'),
      emptyOnFailure(['allow-list', 'allow-empty', 'Could not load the allowlist.']),
    );
    if (r) renderAllowlist(r);
  }

  function renderAllowlist(r) {
    const emails = Array.isArray(r.emails) ? r.emails.map(String) : [];
    reconcile($('allow-list'), emails, {
      key: (e) => e,
      fp: (e) => (e === state.owner ? 'me' : ''),
      build: buildAllowRow,
      update: (el, e) => updateRow(el, buildAllowRow(e)),
    });
    showEmpty($('allow-empty'), emails.length ? null
      : 'The allowlist is empty: jobs from any sender wait for you unless their code is trusted.');

    const invalid = Array.isArray(r.invalid) ? r.invalid : [];
    const box = $('allow-invalid');
    const list = $('allow-invalid-list');
    const key = JSON.stringify(invalid);
    if (list.dataset.key !== key) {
      clear(list);
      for (const inv of invalid) {
        list.appendChild(h('li', null, h('code', null, String(inv.file)), ': ', String(inv.reason || 'invalid')));
      }
      list.dataset.key = key;
    }
    box.hidden = invalid.length === 0;
  }

  function buildAllowRow(email) {
    const btn = h('button', { type: 'button', class: 'btn btn-danger remove', 'aria-label': `Remove ${email}` }, 'Remove');
    btn.addEventListener('click', () => removeEmail(email, btn));
    return h('li', { class: 'row', dataset: { email } },
      h('span', { class: 'email' }, email),
      email === state.owner ? badge('you', 'ignore') : null,
      btn);
  }

  async function addEmail(ev) {
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

  // ---------------------------------------------------------------- Trusted code tab

  async function loadTrusted() {
    const both = await latest(
      'trusted',
      () => Promise.all([api('GET', '/api/v1/trusted-code'), api('GET', '/api/v1/trusted-code/history')]),
      emptyOnFailure(
        ['trusted-list', 'trusted-empty', 'Could not load the trusted code.'],
        ['history-list', 'history-empty', 'Could not load the history.'],
      ),
    );
    if (!both) return;
    const [trusted, history] = both;
    const t = Array.isArray(trusted.trusted) ? trusted.trusted : [];
    const hist = Array.isArray(history.history) ? history.history : [];
    reconcile($('trusted-list'), t, { key: (r) => String(r.signature), fp: recordFp, build: (r) => buildRecord(r, 'trusted'), update: (el, r) => updateRecord(el, r, 'trusted') });
    reconcile($('history-list'), hist, { key: (r) => String(r.signature), fp: recordFp, build: (r) => buildRecord(r, 'history'), update: (el, r) => updateRecord(el, r, 'history') });
    showEmpty($('trusted-empty'), t.length ? null
      : 'No trusted code yet: read a job in the history below and mark its code trusted.');
    showEmpty($('history-empty'), hist.length ? null
      : 'No completed jobs recorded yet: jobs appear here once they complete, with their code.');
  }

  function recordFp(r) {
    return JSON.stringify([r.name, r.description, r.tags, r.requesters, r.uids, r.first_seen, r.last_seen, r.marked_at, r.trusted]);
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
        kind === 'trusted' && rec.marked_at ? field('Marked', timeEl(rec.marked_at)) : null,
        field('Last seen', rec.last_seen ? timeEl(rec.last_seen) : h('span', { class: 'muted' }, 'never')),
        Array.isArray(rec.tags) && rec.tags.length ? field('Tags', tagsEl(rec.tags)) : null,
        field('Signature', signatureEl(sig))),
      rec.description ? h('p', { class: 'description' }, String(rec.description)) : null);
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

  // ---------------------------------------------------------------- Peers tab

  async function loadPeers() {
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
  async function refreshPeerCount() {
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
    const list = $('peer-invalid-list');
    const key = JSON.stringify(invalid);
    if (list.dataset.key !== key) {
      clear(list);
      for (const inv of invalid) {
        list.appendChild(h('li', null, h('code', null, String(inv.file)), ': ', String(inv.reason || 'invalid')));
      }
      list.dataset.key = key;
    }
    $('peer-invalid').hidden = invalid.length === 0;
  }

  /**
   * Gives the row `el` the content of the freshly built `next` in place (`reconcile` keeps `el`),
   * keeping keyboard focus on the button of the same kind.
   */
  function updateRow(el, next) {
    const focused = el.contains(document.activeElement) ? document.activeElement : null;
    const kind = focused && focused.tagName === 'BUTTON' ? focused.className.split(' ').pop() : null;
    el.className = next.className;
    for (const [k, v] of Object.entries(next.dataset)) el.dataset[k] = v;
    el.replaceChildren(...next.childNodes);
    if (focused) {
      const same = kind ? el.querySelector(`button.${CSS.escape(kind)}`) : null;
      if (same) same.focus();
    }
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

  // ---------------------------------------------------------------- Decisions tab

  const OUTCOME = {
    approved: ['approved', 'approve'],
    waiting: ['waiting', 'wait'],
    flagged: ['flagged', 'flag'],
    sent_back: ['sent back', 'amber'],
    unexplained: ['unexplained', 'flag'],
  };
  const METHOD = { allowlist: 'trusted sender', trusted_code: 'trusted code' };

  async function loadDecisions() {
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

  function shortUid(uid) {
    const s = String(uid || '');
    return s.length > 13 ? `${s.slice(0, 8)}…` : s;
  }

  /** An email that may wrap before its @ rather than mid-word. */
  function emailEl(email) {
    const str = String(email);
    const at = str.indexOf('@');
    return at > 0
      ? h('span', { class: 'email' }, str.slice(0, at), h('wbr'), str.slice(at))
      : h('span', { class: 'email' }, str);
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
        ? h('ul', { class: 'reasons-compact' }, d.reasons.map((x) => h('li', null, String(x))))
        : h('span', { class: 'muted' }, '–')));
  }

  // ---------------------------------------------------------------- tabs

  const LOADERS = { pending: loadPending, allowlist: loadAllowlist, trusted: loadTrusted, peers: loadPeers, decisions: loadDecisions };

  function selectTab(name, { focus = false, load = true } = {}) {
    if (!TABS.includes(name)) name = 'pending';
    state.tab = name;
    for (const t of TABS) {
      const tab = $(`tab-${t}`);
      const on = t === name;
      tab.setAttribute('aria-selected', on ? 'true' : 'false');
      tab.tabIndex = on ? 0 : -1;
      $(`panel-${t}`).hidden = !on;
    }
    if (focus) $(`tab-${name}`).focus();
    if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
    if (load) restartDataLoop(true);
  }

  function onTabKey(ev) {
    const i = TABS.indexOf(state.tab);
    let next = null;
    if (ev.key === 'ArrowRight' || ev.key === 'ArrowDown') next = TABS[(i + 1) % TABS.length];
    else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowUp') next = TABS[(i - 1 + TABS.length) % TABS.length];
    else if (ev.key === 'Home') next = TABS[0];
    else if (ev.key === 'End') next = TABS[TABS.length - 1];
    if (next === null) return;
    ev.preventDefault();
    selectTab(next, { focus: true });
  }

  // ---------------------------------------------------------------- polling

  const loops = {};

  function startLoop(name, fn, every, runNow) {
    stopLoop(name);
    const token = {};
    loops[name] = token;
    const run = async () => {
      if (loops[name] !== token) return;
      try {
        await fn();
      } finally {
        if (loops[name] === token && !document.hidden) token.timer = setTimeout(run, every);
      }
    };
    if (runNow) run();
    else token.timer = setTimeout(run, every);
  }

  function stopLoop(name) {
    const t = loops[name];
    if (t) clearTimeout(t.timer);
    delete loops[name];
  }

  function restartDataLoop(runNow) {
    if (document.hidden) return;
    startLoop('data', () => LOADERS[state.tab](), DATA_EVERY_MS, runNow);
  }

  function startPolling() {
    let ticks = 0;
    startLoop('status', async () => {
      await refreshStatus();
      tickTimes();
      if (ticks++ % PEER_COUNT_EVERY === 0 && state.tab !== 'peers') refreshPeerCount();
    }, STATUS_EVERY_MS, true);
    restartDataLoop(true);
  }

  function stopPolling() {
    stopLoop('status');
    stopLoop('data');
  }

  // ---------------------------------------------------------------- start

  function init() {
    for (const t of TABS) $(`tab-${t}`).addEventListener('click', () => selectTab(t));
    document.querySelector('[role="tablist"]').addEventListener('keydown', onTabKey);

    $('error-dismiss').addEventListener('click', hideError);

    $('pending-filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      applyFilters(true);
    });
    $('pending-filters').addEventListener('input', () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => applyFilters(false), 600);
    });
    $('filter-clear').addEventListener('click', () => {
      $('filter-sender').value = '';
      $('filter-name').value = '';
      $('filter-max-age').value = '';
      applyFilters(true);
    });
    $('pending-more').addEventListener('click', async (ev) => {
      state.pendingWant += PAGE;
      await withButton(ev.currentTarget, loadPending);
      restartDataLoop(false);
    });

    $('allow-form').addEventListener('submit', addEmail);
    $('allow-email').addEventListener('input', () => {
      if ($('allow-msg').dataset.kind) setAllowMsg('', '');
    });

    document.addEventListener('visibilitychange', () => {
      if (document.hidden) stopPolling();
      else startPolling();
    });
    window.addEventListener('hashchange', () => {
      const name = location.hash.slice(1);
      if (TABS.includes(name) && name !== state.tab) selectTab(name);
    });

    const initial = location.hash.slice(1);
    selectTab(TABS.includes(initial) ? initial : 'pending', { load: false });
    if (document.hidden) {
      // Load once so the page is not empty when first shown; polling starts when visible.
      refreshStatus();
      LOADERS[state.tab]();
    } else {
      startPolling();
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
