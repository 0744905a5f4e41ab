// Signing in to a master with authentication on: the token is kept in localStorage and sent
// as `Authorization: token=...` (DC/OS's form); a cookie of the same token lets the event
// stream (EventSource cannot send headers) and log reads through. On an open master none of
// this shows.

import { h } from "./dom.js";
import { modal } from "./dialog.js";

const KEY = "pallet-token";

export function token() {
  try {
    return localStorage.getItem(KEY) || "";
  } catch {
    return "";
  }
}

/** The header that carries the kept token, if any. */
export function authHeaders() {
  const t = token();
  return t ? { Authorization: `token=${t}` } : {};
}

function keep(value) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  if (value) {
    localStorage.setItem(KEY, value);
    document.cookie = `${KEY}=${value}; path=/; SameSite=Strict${secure}`;
  } else {
    localStorage.removeItem(KEY);
    document.cookie = `${KEY}=; path=/; max-age=0; SameSite=Strict${secure}`;
  }
}

let asking = null;

/**
 * The master answered 401: forget the token and ask for a user and password (one form,
 * however many calls were refused). On success the page starts again, signed in.
 */
export function signIn(message) {
  if (asking) return asking;
  keep("");
  const user = h("input", { id: "login-user", name: "uid", autocomplete: "username", required: true, value: "admin" });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const body = [
    h("p", {}, message || "This cluster needs you to sign in."),
    h("label", { for: "login-user" }, "User"),
    user,
    h("label", { for: "login-password" }, "Password"),
    password,
  ];
  asking = modal({
    title: "Sign in",
    body,
    submitLabel: "Sign in",
    run: async () => {
      const response = await fetch(new URL("v1/auth/login", document.baseURI), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ uid: user.value, password: password.value }),
      });
      const doc = await response.json().catch(() => null);
      if (!response.ok || !doc || !doc.token) {
        throw new Error((doc && doc.message) || `sign-in failed: HTTP ${response.status}`);
      }
      keep(doc.token);
    },
  }).then((ok) => {
    asking = null;
    if (ok) location.reload();
    return ok;
  });
  return asking;
}

/** Forget the token here and revoke it on the master. */
export async function signOut() {
  const headers = authHeaders();
  keep("");
  await fetch(new URL("v1/auth/logout", document.baseURI), { method: "POST", headers }).catch(() => null);
  location.reload();
}
