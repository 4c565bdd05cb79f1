// syft-reviewer browser UI. Plain JavaScript modules, no dependencies and no build step: this
// entry module wires the page's controls to the feature modules it imports.
import { addEmail, setAllowMsg } from './allowlist.js';
import { initBulk } from './bulk.js';
import { $ } from './dom.js';
import { hideError, withButton } from './notices.js';
import { applyFilters, loadPending, scheduleFilters } from './pending.js';
import { restartDataLoop, setTabLoader, startPolling, stopPolling } from './polling.js';
import { PAGE, state } from './state.js';
import { refreshStatus } from './status.js';
import { TABS, loadOpenTab, onTabKey, selectTab } from './tabs.js';

function init() {
  setTabLoader(loadOpenTab);
  for (const t of TABS) $(`tab-${t}`).addEventListener('click', () => selectTab(t));
  document.querySelector('[role="tablist"]').addEventListener('keydown', onTabKey);

  $('error-dismiss').addEventListener('click', hideError);

  $('pending-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    applyFilters(true);
  });
  $('pending-filters').addEventListener('input', scheduleFilters);
  $('filter-clear').addEventListener('click', () => {
    $('filter-sender').value = '';
    $('filter-name').value = '';
    $('filter-max-age').value = '';
    applyFilters(true);
  });
  initBulk(loadPending);
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
    loadOpenTab();
  } else {
    startPolling();
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
