// What the Marathon and Chronos pages share: element lookup and building, the API call, the
// confirm dialog and the run-an-action-then-refresh step. Loaded before the page's own app.js
// (a plain script, so these are globals the page uses); act() calls the page's showMessage()
// and refresh().
"use strict";

const $ = (id) => document.getElementById(id);

// Builds an element: h("td", {class: "x", onclick: f}, "text", child, ...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Sends a request, with `body` as JSON when given (a string goes as it is). Resolves with
// {json, text}: the answer's text and its parse (null when empty or not JSON). An answer that
// is not 2xx rejects with "<status>: <message>", the message being the JSON's `message`, else
// the text, else the status text, passed through `describe(message, json)` when given.
async function fetchJson(method, url, {body, headers = {}, describe} = {}) {
  const init = {method, headers: {...headers}};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  if (!response.ok) {
    const message = (json && json.message) || text || response.statusText;
    throw new Error(`${response.status}: ${describe ? describe(message, json) : message}`);
  }
  return {json, text};
}

// Runs an action, shows its failure (or clears the message) and refreshes the page.
async function act(what, fn) {
  try {
    await fn();
    showMessage("");
  } catch (e) {
    showMessage(`${what}: ${e.message}`);
  }
  refresh();
}

// The confirm dialog (#confirm-dialog): asks `title`/`text` with `button` on its OK button;
// OK runs `action`.
let confirmAction = null;

function confirmThen(title, text, button, action) {
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = button;
  confirmAction = action;
  $("confirm-dialog").showModal();
  $("confirm-cancel").focus();
}

function wireConfirmDialog() {
  $("confirm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("confirm-dialog").close();
    const action = confirmAction;
    confirmAction = null;
    if (action) action();
  });
  $("confirm-cancel").addEventListener("click", () => $("confirm-dialog").close());
}
