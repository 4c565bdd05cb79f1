// What changed in a pending job (GET /api/v1/jobs/{uid}/diff): the summary line at the top of
// its card, and the "What changed" panel with the diff of each file from the closest trusted
// code or history entry. Long hunks and long files are folded; "Show full files" switches to the
// job's code. Job text is written through dom.js, so invisible characters show as ⟨U+XXXX⟩.
import { api, enc } from './client.js';
import { clear, h } from './dom.js';
import { bytes, plural, shortHash } from './format.js';
import { badge } from './widgets.js';

const FOLD_HUNK = 40; // a longer hunk shows its first lines and "Show N more lines"
const FOLD_FILE = 200; // a file with a longer diff starts closed

const CHANGE = {
  changed: ['changed', 'wait'],
  added: ['new file', 'flag'],
  removed: ['removed', 'ignore'],
  renamed: ['renamed', 'ignore'],
};

const NOT_BY_LINE = {
  binary: 'Binary: compared by size and hash.',
  too_large: 'Too large to compare line by line: compared by size and hash.',
  too_different: 'Too different to compare line by line: compared by size and hash. Read the full files.',
  unavailable: 'The old text was not kept: compared by size and hash.',
};

let ids = 0;

/**
 * The summary line, the "What changed" toggle and its panel for the job `uid`. `code` is the
 * card's code toggle (widgets.js), which "Show full files" opens. The diff is fetched once and
 * again after `reset()` (the job's code changed).
 */
export function diffView(uid, status, code) {
  const id = `diff-panel-${++ids}`;
  const summary = h('p', { class: 'diff-summary', hidden: true, 'aria-live': 'polite' });
  const panel = h('div', { class: 'diff-panel', id, hidden: true });
  const btn = h('button', { type: 'button', class: 'btn btn-quiet toggle-diff', 'aria-expanded': 'false', 'aria-controls': id }, 'What changed');
  let loading = null;
  let rendered = false;

  const fetchDiff = () => {
    if (!loading) {
      loading = api('GET', `/api/v1/jobs/${enc(uid)}/diff?status=${enc(status)}`);
      loading.then(showSummary, () => { summary.hidden = true; });
    }
    return loading;
  };

  function showSummary(d) {
    clear(summary);
    const known = d && d.closest;
    summary.append(h('span', { class: 'diff-summary-label' }, 'What changed: '), String((d && d.summary) || ''));
    summary.classList.toggle('muted', !known);
    summary.hidden = false;
  }

  async function render() {
    clear(panel);
    panel.appendChild(h('p', { class: 'muted' }, 'Loading the diff…'));
    try {
      const d = await fetchDiff();
      clear(panel);
      panel.append(...panelBody(d, code));
      rendered = true;
    } catch (err) {
      clear(panel);
      panel.appendChild(h('p', { class: 'inline-error' }, err.message, err.hint ? ` ${err.hint}` : ''));
    }
  }

  btn.addEventListener('click', () => {
    const open = btn.getAttribute('aria-expanded') === 'true';
    btn.setAttribute('aria-expanded', open ? 'false' : 'true');
    panel.hidden = open;
    if (!open && !rendered) render();
  });

  return {
    summary,
    btn,
    panel,
    /** Loads the summary once `card` is on screen: a long list does not ask for every diff. */
    loadWhenShown(card) {
      if (typeof IntersectionObserver !== 'function') {
        fetchDiff().catch(() => {});
        return;
      }
      const seen = new IntersectionObserver((entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        seen.disconnect();
        fetchDiff().catch(() => {});
      });
      seen.observe(card);
    },
    reset() {
      loading = null;
      rendered = false;
      if (!panel.hidden) render();
      else fetchDiff().catch(() => {});
    },
  };
}

function panelBody(d, code) {
  const out = [];
  const c = d.closest;
  if (!c) {
    out.push(h('p', { class: 'diff-none' }, String(d.summary || 'No close match.'), ' Read the full files.'));
  } else {
    const source = c.source === 'trusted' ? 'trusted code' : 'the history entry';
    const why = c.closeness === 'same_name_and_sender' ? 'same name and sender' : `${plural(c.shared_files, 'identical file')}`;
    out.push(h('p', { class: 'diff-head' }, `Compared with ${source} "${c.name}" (${why}), signature `,
      h('code', { class: 'hash', title: String(c.signature) }, shortHash(c.signature)),
      d.identical ? ': the same code.' : '.'));
    const fields = Array.isArray(d.fields) ? d.fields : [];
    if (fields.length) {
      out.push(h('ul', { class: 'diff-fields' }, fields.map((f) => h('li', null,
        h('strong', null, String(f.field)), ': ', JSON.stringify(f.old), ' → ', JSON.stringify(f.new)))));
    }
    const files = Array.isArray(d.files) ? d.files : [];
    const same = files.filter((f) => f.change === 'unchanged');
    if (same.length) {
      out.push(h('p', { class: 'diff-same muted' }, `${plural(same.length, 'file')} identical: `,
        same.map((f, i) => [i ? ', ' : '', h('code', null, String(f.path))])));
    }
    const changed = files.filter((f) => f.change !== 'unchanged');
    if (changed.length) out.push(h('div', { class: 'files diff-files' }, changed.map(fileEl)));
  }
  const full = h('button', { type: 'button', class: 'btn btn-quiet show-full' }, 'Show full files');
  full.addEventListener('click', () => {
    if (code.btn.getAttribute('aria-expanded') !== 'true') code.btn.click();
    code.panel.scrollIntoView({ block: 'start' });
  });
  out.push(h('div', { class: 'diff-foot' }, full));
  return out;
}

function counts(f) {
  if (typeof f.added === 'number' && typeof f.removed === 'number' && f.shown === 'lines') {
    return h('span', { class: 'diff-counts' }, h('span', { class: 'diff-plus' }, `+${f.added}`), ' ', h('span', { class: 'diff-minus' }, `−${f.removed}`));
  }
  return null;
}

function versions(f) {
  const v = (x) => (x ? `${bytes(x.size)} (${shortHash(x.sha256)})` : 'none');
  return `${v(f.old)} → ${v(f.new)}`;
}

function fileEl(f) {
  const [label, kind] = CHANGE[f.change] || [String(f.change), 'ignore'];
  const head = h('header', { class: 'file-head' },
    h('code', { class: 'file-path' }, String(f.path)),
    badge(label, kind),
    f.from ? h('span', { class: 'muted' }, 'from ', h('code', null, String(f.from))) : null,
    counts(f));
  const el = h('section', { class: 'file diff-file', dataset: { path: String(f.path), change: String(f.change) } }, head);
  if (f.shown === 'same') {
    el.appendChild(h('p', { class: 'file-note' }, 'Identical bytes.'));
    return el;
  }
  if (f.shown !== 'lines') {
    el.appendChild(h('p', { class: 'file-note' }, NOT_BY_LINE[f.shown] || 'Compared by size and hash.', ' ', versions(f)));
    return el;
  }
  const hunks = Array.isArray(f.hunks) ? f.hunks : [];
  const total = hunks.reduce((n, hk) => n + (Array.isArray(hk.lines) ? hk.lines.length : 0), 0);
  const body = h('div', { class: 'diff-lines', tabindex: '0', 'aria-label': `Changes to ${f.path}` }, hunks.map(hunkEl));
  const note = f.cut ? h('p', { class: 'file-note warn-text' }, 'Cut: this diff is longer than the lines shown. Read the full file.') : null;
  if (total > FOLD_FILE) {
    el.appendChild(h('details', { class: 'diff-fold' },
      h('summary', null, `Long diff: ${plural(total, 'line')}. Open to read it.`), body, note));
  } else {
    el.append(body);
    if (note) el.append(note);
  }
  return el;
}

function lineEl(l) {
  const kind = l.kind === 'added' ? 'added' : l.kind === 'removed' ? 'removed' : 'context';
  const mark = kind === 'added' ? '+' : kind === 'removed' ? '−' : ' ';
  return h('div', { class: `dl dl-${kind}` },
    h('span', { class: 'ln', 'aria-hidden': 'true' }, l.old == null ? '' : String(l.old)),
    h('span', { class: 'ln', 'aria-hidden': 'true' }, l.new == null ? '' : String(l.new)),
    h('span', { class: 'mk' }, mark),
    h('span', { class: 'tx' }, String(l.text ?? '')),
    l.eol === false ? h('span', { class: 'no-eol', title: 'No line break at the end of the file' }, ' ⟨no newline at end⟩') : null);
}

function hunkEl(hk) {
  const lines = Array.isArray(hk.lines) ? hk.lines : [];
  const el = h('div', { class: 'hunk' },
    h('div', { class: 'hunk-head' }, `@@ −${hk.old_start},${hk.old_lines} +${hk.new_start},${hk.new_lines} @@`));
  if (lines.length <= FOLD_HUNK) {
    el.append(...lines.map(lineEl));
    return el;
  }
  const first = Math.floor(FOLD_HUNK / 2);
  el.append(...lines.slice(0, first).map(lineEl));
  const more = h('button', { type: 'button', class: 'btn btn-tiny unfold' }, `Show ${lines.length - first} more lines`);
  more.addEventListener('click', () => {
    const rest = lines.slice(first).map(lineEl);
    more.replaceWith(...rest);
    if (rest[0]) rest[0].setAttribute('tabindex', '-1');
  });
  el.append(more);
  return el;
}
