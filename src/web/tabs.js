// The tabs: which one is open, keyboard navigation between them, and the loader of each.
import { loadAllowlist } from './allowlist.js';
import { $ } from './dom.js';
import { loadDecisions } from './decisions.js';
import { loadPeers } from './peers.js';
import { loadPending } from './pending.js';
import { restartDataLoop } from './polling.js';
import { state } from './state.js';
import { loadTrusted } from './trusted.js';

export const TABS = ['pending', 'allowlist', 'trusted', 'peers', 'decisions'];

const LOADERS = { pending: loadPending, allowlist: loadAllowlist, trusted: loadTrusted, peers: loadPeers, decisions: loadDecisions };

/** Loads the open tab's data. */
export function loadOpenTab() {
  return LOADERS[state.tab]();
}

export function selectTab(name, { focus = false, load = true } = {}) {
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

export function onTabKey(ev) {
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
