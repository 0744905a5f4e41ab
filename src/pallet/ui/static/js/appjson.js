// Marathon's validation errors, mapped back to where the user typed: error paths to words and
// to lines of the JSON text. Pure.

// Play's error codes in words, as the CLI says them (pallet.client.errors).
const WORDS = {
  "error.path.missing": "is required",
  "error.min": "is below its minimum",
  "error.max": "is above its maximum",
  "error.minLength": "is too short",
  "error.maxLength": "is too long",
  "error.pattern": "has characters or a form that is not allowed",
  "error.expected.jsnumber": "must be a number",
  "error.expected.int": "must be a whole number",
  "error.expected.jsstring": "must be a string",
  "error.expected.jsboolean": "must be true or false",
  "error.expected.jsarray": "must be a list",
  "error.expected.jsobject": "must be an object",
  "error.unknown.enum.literal": "is not one of the allowed values",
};

export function words(code) {
  return WORDS[code] || code;
}

/** "/portDefinitions(0)/port" or "/portDefinitions/0/port" -> ["portDefinitions", 0, "port"]. */
export function parsePath(path) {
  const out = [];
  for (const part of String(path).split("/")) {
    if (part === "") continue;
    const m = /^(.*?)((?:\(\d+\))*)$/.exec(part);
    if (m[1] !== "") out.push(/^\d+$/.test(m[1]) ? Number(m[1]) : m[1]);
    for (const idx of m[2].matchAll(/\((\d+)\)/g)) out.push(Number(idx[1]));
  }
  return out;
}

/** "/portDefinitions(0)/port" -> "portDefinitions[0].port"; "/" -> "app". */
export function fieldLabel(path) {
  const parts = parsePath(path);
  if (!parts.length) return "app";
  return parts
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join("");
}

/**
 * The 1-based line of every value in JSON `text`, keyed by its path ("" for the root,
 * "cpus", "portDefinitions/0/port"): for an object member, the line of its key. Throws a
 * SyntaxError with `.line` on malformed JSON.
 */
export function lineIndex(text) {
  const lines = new Map();
  let i = 0;
  let line = 1;
  const fail = (what) => {
    const e = new SyntaxError(`line ${line}: ${what}`);
    e.line = line;
    throw e;
  };
  const ws = () => {
    while (i < text.length && " \t\r\n".includes(text[i])) {
      if (text[i] === "\n") line += 1;
      i += 1;
    }
  };
  const string = () => {
    if (text[i] !== '"') fail("expected a string");
    const start = i;
    i += 1;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") i += 1;
      else if (text[i] === "\n") fail("a string cannot span lines");
      i += 1;
    }
    if (i >= text.length) fail("unterminated string");
    i += 1;
    return JSON.parse(text.slice(start, i));
  };
  const value = (path, keyLine) => {
    ws();
    lines.set(path.join("/"), keyLine ?? line);
    const c = text[i];
    if (c === "{") {
      i += 1;
      ws();
      if (text[i] === "}") {
        i += 1;
        return;
      }
      for (;;) {
        ws();
        const at = line;
        const key = string();
        ws();
        if (text[i] !== ":") fail("expected ':'");
        i += 1;
        value([...path, key], at);
        ws();
        if (text[i] === ",") i += 1;
        else if (text[i] === "}") {
          i += 1;
          return;
        } else fail("expected ',' or '}'");
      }
    } else if (c === "[") {
      i += 1;
      ws();
      if (text[i] === "]") {
        i += 1;
        return;
      }
      for (let n = 0; ; n++) {
        value([...path, n]);
        ws();
        if (text[i] === ",") i += 1;
        else if (text[i] === "]") {
          i += 1;
          return;
        } else fail("expected ',' or ']'");
      }
    } else if (c === '"') {
      string();
    } else {
      const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 64));
      if (!m) fail(`unexpected ${c === undefined ? "end of text" : `'${c}'`}`);
      i += m[0].length;
    }
  };
  value([]);
  ws();
  if (i < text.length) fail("unexpected text after the JSON value");
  return lines;
}

/** The line of an error path in `index` (from lineIndex): the path itself, else its nearest
 * ancestor that is there (a missing field points at the object that lacks it). */
export function lineOf(index, path) {
  const parts = parsePath(path);
  for (let n = parts.length; n >= 0; n--) {
    const found = index.get(parts.slice(0, n).join("/"));
    if (found !== undefined) return found;
  }
  return 1;
}
