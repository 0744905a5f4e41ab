// One colour per app, kept for the whole session so a running app never changes colour when
// others come and go. The first twelve come from a palette chosen to stay apart (Tableau 10
// plus two); later apps walk the hue circle by the golden angle.

const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#59a14f",
  "#b07aa1",
  "#76b7b2",
  "#edc948",
  "#9c755f",
  "#ff9da7",
  "#1b9e77",
  "#7570b3",
  "#d95f02",
];

const assigned = new Map();

/** Give colours to `appIds` (sorted, so a fresh page colours the same cluster the same way). */
export function assignColors(appIds) {
  for (const id of [...appIds].sort()) colorOf(id);
}

export function colorOf(appId) {
  let color = assigned.get(appId);
  if (!color) {
    const i = assigned.size;
    color = i < PALETTE.length ? PALETTE[i] : `hsl(${Math.round((i * 137.508) % 360)} 55% 50%)`;
    assigned.set(appId, color);
  }
  return color;
}

/** Allocation the dashboard cannot attribute to a known task (a task seen by the node but
 * not yet in the task list, or another framework's). */
export const OTHER = "#8c959f";
