// Numbers, sizes and times as people read them. Pure.

export const RESOURCES = [
  { key: "cpus", label: "CPU", short: "C", unit: "cores" },
  { key: "mem", label: "Memory", short: "M", unit: "MiB" },
  { key: "disk", label: "Disk", short: "D", unit: "MiB" },
  { key: "gpus", label: "GPU", short: "G", unit: "GPUs" },
];

/** 0.6666 -> "0.667", 12 -> "12", 1234.5 -> "1,235". */
export function num(x, digits = 3) {
  if (!Number.isFinite(x)) return "–";
  const abs = Math.abs(x);
  const d = abs >= 100 ? 0 : abs >= 10 ? Math.min(digits, 1) : digits;
  return x.toLocaleString("en-US", { maximumFractionDigits: d });
}

/** MiB -> "512 MiB", "7.5 GiB", "1.2 TiB". */
export function mib(x) {
  if (!Number.isFinite(x)) return "–";
  if (Math.abs(x) >= 1024 * 1024) return `${num(x / (1024 * 1024), 2)} TiB`;
  if (Math.abs(x) >= 1024) return `${num(x / 1024, 2)} GiB`;
  return `${num(x, 1)} MiB`;
}

/** An amount of a resource with its unit. */
export function amount(key, x) {
  if (key === "mem" || key === "disk") return mib(x);
  if (key === "cpus") return `${num(x)} ${x === 1 ? "core" : "cores"}`;
  return `${num(x)} ${x === 1 ? "GPU" : "GPUs"}`;
}

export function pct(part, whole) {
  if (!whole) return "–";
  return `${Math.round((100 * part) / whole)}%`;
}

/** ISO time -> "13:25:08" today, else "Nov 27 13:25". */
export function clock(iso) {
  if (!iso) return "–";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const now = new Date();
  const time = t.toLocaleTimeString("en-GB", { hour12: false });
  if (t.toDateString() === now.toDateString()) return time;
  return `${t.toLocaleDateString("en-US", { month: "short", day: "numeric" })} ${time.slice(0, 5)}`;
}

/** ISO time -> "5s ago", "3m ago", "2h ago". */
export function ago(iso, now = Date.now()) {
  if (!iso) return "–";
  const secs = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (!Number.isFinite(secs)) return "–";
  if (secs < 60) return `${secs}s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)}h ago`;
  return `${Math.floor(secs / 86400)}d ago`;
}

/** "TASK_RUNNING" -> "running". */
export function stateName(state) {
  return String(state || "unknown")
    .replace(/^TASK_/, "")
    .toLowerCase();
}

/** A task id shortened for tables: "web.5c416532-b437-..." -> "web.5c416532". */
export function shortId(id) {
  const m = /^(.*\.)([0-9a-f]{8})-[0-9a-f-]{27}$/.exec(id || "");
  return m ? m[1] + m[2] : id;
}
