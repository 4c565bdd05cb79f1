// The error banner, short notices, and loads whose late answers are dropped.
import { ApiError } from './client.js';
import { $, showEmpty } from './dom.js';
import { state } from './state.js';

let bannerNetwork = false;

export function showError(err) {
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

export function hideError() {
  $('error').hidden = true;
  bannerNetwork = false;
}

/** Clears the banner when it only reported a lost connection that is now back. */
function connectionBack() {
  if (bannerNetwork) hideError();
}

let noticeTimer = null;
/**
 * A short notice at the bottom of the window. While it shows, the page keeps that much room
 * free below its content (and scrolling into view stops above it), so it never hides a row.
 */
export function notice(text) {
  const el = $('notice');
  el.textContent = text;
  el.classList.add('show');
  const root = document.documentElement;
  root.style.setProperty('--notice-room', `${el.offsetHeight + 32}px`);
  root.classList.add('notice-shown');
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    el.classList.remove('show');
    el.textContent = '';
    root.classList.remove('notice-shown');
  }, 4000);
}

/** Runs an action with `button` disabled; reports failures in the banner. */
export async function withButton(button, fn) {
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

/**
 * Runs `load` for the view `name`. Only the latest call per view gets its answer: an older one
 * that finishes late returns undefined, so a slow answer never overwrites a newer one. On
 * failure of the latest call, the error is shown and `failed(err)` runs.
 */
export async function latest(name, load, failed) {
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
export function emptyOnFailure(...lists) {
  return () => {
    for (const [list, empty, text] of lists) {
      if (!$(list).children.length) showEmpty($(empty), text);
    }
  };
}
