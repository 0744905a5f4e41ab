// Creating an app: a form for the common fields, or the whole Marathon definition as JSON.
// The master validates; its 422 errors appear next to the field they name, or on the line of
// the JSON editor that holds it.

import { api } from "../api.js";
import { fieldLabel, lineIndex, lineOf, parsePath, words } from "../appjson.js";
import { announce, h, viewTitle } from "../dom.js";
import { want } from "../store.js";

const FIELDS = [
  { key: "id", label: "App id", type: "text", hint: "A path such as /web or /prod/api.", required: true },
  { key: "cmd", label: "Command", type: "text", hint: "Run by /bin/sh -c on the node.", required: true },
  { key: "cpus", label: "CPUs", type: "number", step: "0.01", hint: "Per instance, e.g. 0.1." },
  { key: "mem", label: "Memory (MiB)", type: "number", step: "1", hint: "Per instance." },
  { key: "disk", label: "Disk (MiB)", type: "number", step: "1" },
  { key: "gpus", label: "GPUs", type: "number", step: "0.1" },
  { key: "instances", label: "Instances", type: "number", step: "1" },
];

const DEFAULTS = { id: "", cmd: "", cpus: 0.1, mem: 32, disk: 0, gpus: 0, instances: 1 };

/** The form's values as Marathon JSON: numbers where they parse, text as typed otherwise
 * (so the master, not the browser, says what is wrong with them); empty fields left out. */
function fromForm(inputs, extra) {
  const doc = { ...extra };
  for (const f of FIELDS) {
    const raw = inputs[f.key].value;
    delete doc[f.key];
    if (raw.trim() === "") continue;
    if (f.type === "number") {
      const n = Number(raw);
      doc[f.key] = Number.isFinite(n) ? n : raw;
    } else {
      doc[f.key] = raw;
    }
  }
  return doc;
}

export function createView() {
  let mode = "form";
  let extra = {}; // JSON fields the form has no input for, kept across mode switches
  const inputs = {};
  const errors = {};
  const fieldNodes = FIELDS.map((f) => {
    const id = `app-${f.key}`;
    const hint = f.hint ? h("span", { class: "hint", id: `${id}-hint` }, f.hint) : null;
    const err = h("span", { class: "field-error", id: `${id}-error`, role: "alert", hidden: true });
    const input = h("input", {
      id,
      name: f.key,
      type: f.type === "number" ? "text" : f.type,
      inputmode: f.type === "number" ? "decimal" : undefined,
      value: DEFAULTS[f.key],
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": [hint && `${id}-hint`, `${id}-error`].filter(Boolean).join(" "),
      "aria-required": f.required ? "true" : undefined,
    });
    inputs[f.key] = input;
    errors[f.key] = err;
    return h("div", { class: `field f-${f.key}` }, h("label", { for: id }, f.label), input, hint, err);
  });

  const gutter = h("div", { class: "gutter", "aria-hidden": "true" });
  const editor = h("textarea", {
    id: "app-json",
    class: "json-editor",
    spellcheck: "false",
    autocomplete: "off",
    wrap: "off",
    rows: 18,
    "aria-describedby": "app-json-hint app-json-errors",
  });
  const jsonErrors = h("ul", { id: "app-json-errors", class: "json-errors", role: "alert" });
  const summary = h("div", { class: "form-error", role: "alert", hidden: true, tabindex: -1 });

  function drawGutter(bad = new Map()) {
    const count = editor.value.split("\n").length;
    gutter.replaceChildren(
      ...Array.from({ length: count }, (_, i) => {
        const why = bad.get(i + 1);
        return h("div", { class: why ? "ln bad" : "ln", title: why || undefined, "data-line": i + 1 }, String(i + 1));
      }),
    );
    gutter.scrollTop = editor.scrollTop;
  }
  editor.addEventListener("input", () => drawGutter());
  editor.addEventListener("scroll", () => {
    gutter.scrollTop = editor.scrollTop;
  });

  const formPane = h("div", { id: "pane-form", role: "tabpanel", "aria-labelledby": "tab-form", class: "fields" }, fieldNodes);
  const jsonPane = h(
    "div",
    { id: "pane-json", role: "tabpanel", "aria-labelledby": "tab-json", hidden: true },
    h("label", { for: "app-json" }, "App definition (Marathon JSON)"),
    h("p", { id: "app-json-hint", class: "hint" }, "Any field of Marathon's app format: env, constraints, portDefinitions, labels …"),
    h("div", { class: "editor" }, gutter, editor),
    jsonErrors,
  );

  const tabs = ["form", "json"].map((name) =>
    h(
      "button",
      {
        type: "button",
        role: "tab",
        id: `tab-${name}`,
        "aria-controls": `pane-${name}`,
        "aria-selected": String(name === mode),
        tabindex: name === mode ? 0 : -1,
        onclick: () => switchTo(name),
        onkeydown: (e) => {
          if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
            const other = name === "form" ? "json" : "form";
            switchTo(other);
            document.getElementById(`tab-${other}`).focus();
          }
        },
      },
      name === "form" ? "Form" : "JSON",
    ),
  );

  function switchTo(name) {
    if (name === mode) return;
    if (name === "json") {
      editor.value = JSON.stringify(fromForm(inputs, extra), null, 2);
      drawGutter();
    } else {
      let doc;
      try {
        doc = JSON.parse(editor.value);
      } catch (e) {
        showSummary(`Fix the JSON before switching: ${e.message}`);
        return;
      }
      if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
        showSummary("The definition must be a JSON object.");
        return;
      }
      extra = {};
      for (const [k, v] of Object.entries(doc)) {
        if (k in inputs && (typeof v === "string" || typeof v === "number")) inputs[k].value = String(v);
        else extra[k] = v;
      }
      for (const f of FIELDS) if (!(f.key in doc)) inputs[f.key].value = "";
    }
    mode = name;
    clearErrors();
    for (const tab of tabs) {
      const on = tab.id === `tab-${name}`;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    formPane.hidden = name !== "form";
    jsonPane.hidden = name !== "json";
  }

  function clearErrors() {
    summary.hidden = true;
    summary.replaceChildren();
    for (const f of FIELDS) {
      errors[f.key].hidden = true;
      errors[f.key].textContent = "";
      inputs[f.key].removeAttribute("aria-invalid");
    }
    jsonErrors.replaceChildren();
    editor.removeAttribute("aria-invalid");
    drawGutter();
  }

  function showSummary(message, items = []) {
    summary.replaceChildren(h("p", {}, message), items.length ? h("ul", {}, items) : null);
    summary.hidden = false;
  }

  function jumpTo(line) {
    const lines = editor.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((a, l) => a + l.length + 1, 0);
    editor.focus();
    editor.setSelectionRange(start, start + (lines[line - 1] || "").length);
    const lh = parseFloat(getComputedStyle(editor).lineHeight) || 20;
    editor.scrollTop = Math.max(0, (line - 3) * lh);
  }

  /** Put each of Marathon's errors where it belongs. */
  function showErrors(err) {
    const details = err.details;
    if (!details.length) {
      showSummary(err.message);
      summary.focus();
      return;
    }
    if (mode === "form") {
      const rest = [];
      let first = null;
      for (const d of details) {
        const parts = parsePath(d.path);
        const key = parts.length >= 1 && typeof parts[0] === "string" ? parts[0] : null;
        const text = (d.errors || []).map(words).join("; ");
        if (key && key in inputs && parts.length === 1) {
          errors[key].textContent = text;
          errors[key].hidden = false;
          inputs[key].setAttribute("aria-invalid", "true");
          first = first || inputs[key];
        } else {
          rest.push(h("li", {}, `${fieldLabel(d.path)}: ${text}`));
        }
      }
      if (rest.length) showSummary(err.message, rest);
      (first || summary).focus();
      return;
    }
    let index;
    try {
      index = lineIndex(editor.value);
    } catch {
      index = new Map();
    }
    const bad = new Map();
    const items = details.map((d) => {
      const line = lineOf(index, d.path);
      const text = `${fieldLabel(d.path)}: ${(d.errors || []).map(words).join("; ")}`;
      bad.set(line, bad.has(line) ? `${bad.get(line)}\n${text}` : text);
      return h(
        "li",
        {},
        h("button", { type: "button", class: "link", onclick: () => jumpTo(line) }, `Line ${line}`),
        ` ${text}`,
      );
    });
    jsonErrors.replaceChildren(...items);
    editor.setAttribute("aria-invalid", "true");
    drawGutter(bad);
    jumpTo(Math.min(...bad.keys()));
  }

  const submit = h("button", { type: "submit", class: "btn primary" }, "Create app");
  const form = h(
    "form",
    {
      class: "card app-form",
      novalidate: true,
      "aria-labelledby": "create-title",
      onsubmit: async (e) => {
        e.preventDefault();
        clearErrors();
        let body;
        if (mode === "json") {
          try {
            lineIndex(editor.value);
            body = editor.value;
          } catch (syntax) {
            const line = syntax.line || 1;
            drawGutter(new Map([[line, syntax.message]]));
            jsonErrors.replaceChildren(h("li", {}, syntax.message));
            editor.setAttribute("aria-invalid", "true");
            jumpTo(line);
            return;
          }
        } else {
          body = fromForm(inputs, extra);
        }
        submit.disabled = true;
        try {
          const app = await api.createApp(body);
          announce(`Created ${app.id}; its tasks are being placed.`);
          want("apps", "deployments", "tasks", "queue", "nodes");
          location.hash = `#/services${app.id}`;
        } catch (err) {
          showErrors(err);
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("div", { role: "tablist", "aria-label": "Edit as", class: "tabs" }, tabs),
    summary,
    formPane,
    jsonPane,
    h("div", { class: "actions" }, h("a", { class: "btn", href: "#/services" }, "Cancel"), submit),
  );
  const root = h(
    "div",
    { class: "view" },
    h("p", { class: "crumbs" }, h("a", { href: "#/services" }, "Services"), " / "),
    viewTitle(h("span", { id: "create-title" }, "Create an app")),
    form,
  );
  return { title: "Create an app", root, render() {} };
}
