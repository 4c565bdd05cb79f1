// Formatting of times, durations, sizes, hashes and counts as text.

/** Parses the server's naive local ISO timestamps ("2026-11-22T02:42:19.502718") as local time. */
export function parseTime(s) {
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
export function duration(seconds) {
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

export function ago(date) {
  if (!date) return '–';
  const sec = (Date.now() - date.getTime()) / 1000;
  if (sec < 5 && sec > -5) return 'just now';
  return sec >= 0 ? `${duration(sec)} ago` : `in ${duration(-sec)}`;
}

function pad(n) {
  return String(n).padStart(2, '0');
}

export function absolute(date) {
  if (!date) return '';
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function bytes(n) {
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

export function shortHash(s) {
  if (!s) return '';
  const str = String(s);
  const bare = str.startsWith('sha256:') ? str.slice(7) : str;
  return bare.length > 14 ? `${bare.slice(0, 12)}…` : bare;
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many || one + 's'}`;
}
