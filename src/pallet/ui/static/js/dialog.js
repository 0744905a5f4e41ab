// Modal dialogs on the native <dialog>: it traps focus, closes on Escape and gives focus back
// to what opened it. `run` does the work; an error keeps the dialog open and shows the reason.

import { h } from "./dom.js";

/**
 * Show a modal. `body` is a node (or nodes); `run(form)` is awaited on submit and may throw
 * an Error to stay open with its message (an `err.retry` label offers a second attempt
 * that calls `run(form, true)`, e.g. "Force"). Resolves true when `run` succeeded.
 */
export function modal({ title, body, submitLabel, danger = false, run }) {
  const opener = document.activeElement;
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: danger ? "btn danger" : "btn primary" }, submitLabel);
  const cancel = h("button", { type: "button", class: "btn", value: "cancel" }, "Cancel");
  let force = false;
  const form = h(
    "form",
    { method: "dialog", novalidate: true },
    h("h2", { id: "dialog-title" }, title),
    body,
    error,
    h("div", { class: "actions" }, cancel, submit),
  );
  const dialog = h("dialog", { "aria-labelledby": "dialog-title", class: "modal" }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    let done = false;
    const close = (ok) => {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      else document.querySelector(".view-title")?.focus();
      resolve(ok);
    };
    cancel.addEventListener("click", () => close(false));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      close(false);
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        await run(form, force);
        close(true);
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        if (err.retry) {
          force = true;
          submit.textContent = err.retry;
        }
        submit.disabled = false;
      }
    });
    dialog.showModal();
    const first = form.querySelector("input, select, textarea");
    (first || submit).focus();
  });
}
