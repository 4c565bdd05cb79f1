// The API client: JSON requests to the server, with the page's CSRF token on state-changing ones.

const NETWORK_ERROR = 'Cannot reach syft-reviewer: is it running?';

const csrfMeta = document.querySelector('meta[name="csrf-token"]');
const CSRF = csrfMeta ? csrfMeta.getAttribute('content') || '' : '';

export class ApiError extends Error {
  constructor(message, hint, status, network) {
    super(message);
    this.hint = hint || '';
    this.status = status || 0;
    this.network = !!network;
  }
}

export async function api(method, path, body) {
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

export const enc = encodeURIComponent;
