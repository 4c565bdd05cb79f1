// Polling: the status strip and the open tab are refreshed while the page is visible.
import { tickTimes } from './ages.js';
import { refreshPeerCount } from './peers.js';
import { state } from './state.js';
import { refreshStatus } from './status.js';

const STATUS_EVERY_MS = 3000;
const DATA_EVERY_MS = 5000;
const PEER_COUNT_EVERY = 5; // status ticks between updates of the Peers tab's request count

const loops = {};

// The open tab's loader, given by the page at start: the tabs restart this loop, so this module
// cannot import them.
let loadTab = () => undefined;

export function setTabLoader(load) {
  loadTab = load;
}

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

export function restartDataLoop(runNow) {
  if (document.hidden) return;
  startLoop('data', () => loadTab(), DATA_EVERY_MS, runNow);
}

export function startPolling() {
  let ticks = 0;
  startLoop('status', async () => {
    await refreshStatus();
    tickTimes();
    if (ticks++ % PEER_COUNT_EVERY === 0 && state.tab !== 'peers') refreshPeerCount();
  }, STATUS_EVERY_MS, true);
  restartDataLoop(true);
}

export function stopPolling() {
  stopLoop('status');
  stopLoop('data');
}
