// A task's stdout or stderr, followed while the task runs: read the tail, then poll from the
// offset the last read ended at (at once while there is more, every second when caught up).

import { api } from "../api.js";
import { h } from "../dom.js";

const TAIL_BYTES = 64 * 1024;
const CHUNK_BYTES = 64 * 1024;
const KEEP_CHARS = 512 * 1024;
const POLL_MS = 1000;
const RETRY_MS = 3000;

export function logViewer(taskId, { isLive }) {
  let stream = "stdout";
  let offset = -TAIL_BYTES;
  let follow = true;
  let controller = null;
  let timer = null;
  let stopped = false;
  let generation = 0;

  const pre = h("pre", {
    class: "log",
    role: "log",
    "aria-live": "off",
    "aria-label": "Log output",
    tabindex: 0,
  });
  const status = h("p", { class: "log-status muted", role: "status" });
  const followBox = h("input", { type: "checkbox", id: "log-follow", checked: true });
  const tabs = ["stdout", "stderr"].map((name) =>
    h(
      "button",
      {
        type: "button",
        role: "tab",
        id: `log-tab-${name}`,
        "aria-selected": String(name === stream),
        "aria-controls": "log-panel",
        tabindex: name === stream ? 0 : -1,
        onclick: () => select(name),
        onkeydown: (e) => {
          if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
            const other = name === "stdout" ? "stderr" : "stdout";
            select(other);
            document.getElementById(`log-tab-${other}`).focus();
          }
        },
      },
      name,
    ),
  );

  function atBottom() {
    return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  }

  function appendText(text) {
    if (!text) return;
    const stick = atBottom();
    let all = pre.textContent + text;
    if (all.length > KEEP_CHARS) all = `…\n${all.slice(all.length - KEEP_CHARS)}`;
    pre.textContent = all;
    if (stick) pre.scrollTop = pre.scrollHeight;
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = stopped ? null : setTimeout(poll, ms);
  }

  // One read at a time: a poll asked for while another is out runs right after it.
  let busy = false;
  let again = false;

  async function poll() {
    timer = null;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      await readOnce();
    } finally {
      busy = false;
      if (again && !stopped) {
        again = false;
        schedule(0);
      }
    }
  }

  async function readOnce() {
    const mine = generation;
    controller = new AbortController();
    let chunk;
    try {
      chunk = await api.logs(taskId, stream, offset, CHUNK_BYTES, controller.signal);
    } catch (e) {
      if (e.name === "AbortError" || mine !== generation) return;
      status.textContent =
        e.status === 404 ? `No ${stream} yet (${e.message}).` : `Cannot read the log: ${e.message}`;
      if (follow) schedule(RETRY_MS);
      return;
    }
    if (mine !== generation) return;
    if (offset < 0 && chunk.offset > 0) appendText(`… (${chunk.offset} earlier bytes not shown)\n`);
    appendText(chunk.data || "");
    const got = (chunk.next_offset ?? chunk.offset) - chunk.offset;
    offset = chunk.next_offset ?? offset;
    const size = typeof chunk.size === "number" ? chunk.size : offset;
    const live = isLive();
    status.textContent =
      `${stream}: ${offset.toLocaleString("en-US")} of ${size.toLocaleString("en-US")} bytes` +
      (follow && live ? ", following" : live ? "" : ", task ended");
    if (got > 0 && offset < size) schedule(0);
    else if (follow && live) schedule(POLL_MS);
    else if (follow && got > 0) schedule(0);
  }

  function restart() {
    generation += 1;
    controller?.abort();
    pre.textContent = "";
    offset = -TAIL_BYTES;
    status.textContent = "Loading…";
    schedule(0);
  }

  function select(name) {
    if (name === stream) return;
    stream = name;
    for (const tab of tabs) {
      const on = tab.textContent === name;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    pre.setAttribute("aria-labelledby", `log-tab-${name}`);
    restart();
  }

  followBox.addEventListener("change", () => {
    follow = followBox.checked;
    if (follow) {
      pre.scrollTop = pre.scrollHeight;
      schedule(0);
    } else {
      clearTimeout(timer);
    }
  });

  pre.setAttribute("aria-labelledby", "log-tab-stdout");
  const root = h(
    "section",
    { class: "card logs", "aria-labelledby": "logs-title" },
    h(
      "div",
      { class: "log-head" },
      h("h3", { id: "logs-title" }, "Logs"),
      h("div", { role: "tablist", "aria-label": "Log stream", class: "tabs" }, tabs),
      h("label", { class: "check" }, followBox, " Follow"),
    ),
    h("div", { id: "log-panel", role: "tabpanel" }, pre),
    status,
  );
  restart();
  return {
    root,
    /** A new status for the task: pick up what it wrote before it ended. */
    nudge() {
      if (follow && !busy) schedule(0);
    },
    stop() {
      stopped = true;
      generation += 1;
      controller?.abort();
      clearTimeout(timer);
    },
  };
}
