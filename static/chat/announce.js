// What a screen reader hears in a room: a few sentences per reply in a polite live region of their
// own (the message list is not live: each growth frame would be read as a fragment).
// parley.js calls heard() once for every frame it applies; the direct page (direct.js) says its own
// reply's start and end through say().

const LONG = 300; // a finished reply is read up to here, then the reader is sent to the conversation
const SETTING = "parley.read-stream"; // "Read replies as they stream", per browser
const KEEP = 5; // old announcements leave the region: a reader moving through the page finds only recent ones

// The page's language, from Django's JavaScript catalog (see parley.js); English without it.
const { gettext = (msgid) => msgid, interpolate = (format) => format } = window.django || {};
// A translated sentence with its named parts (%(name)s) filled in.
export const phrase = (format, parts) => interpolate(format, parts, true);

const said = new Set(); // "<message id>:<what>", so catch-up and repaired frames repeat nothing
const spoken = new Map(); // message id -> characters of its streamed text read out (streaming mode)

export const readStreaming = () => localStorage.getItem(SETTING) === "on";

export function setReadStreaming(on) {
  if (on) localStorage.setItem(SETTING, "on");
  else localStorage.removeItem(SETTING);
}

// One announcement; key (optional) makes it once per page.
export function say(ids, text, key) {
  const region = document.getElementById(ids.announcer);
  if (!region || !text || (key && said.has(key))) return;
  if (key) said.add(key);
  const line = document.createElement("p");
  line.textContent = text;
  region.append(line);
  while (region.childElementCount > KEEP) region.firstElementChild.remove();
}

const authorOf = (message) => message.querySelector(".author")?.firstChild?.textContent.trim() || "";
const me = () => document.querySelector('meta[name="parley-me"]')?.content || "";

// The text streamed so far for a reply (plain text while it streams, its Markdown's text once done).
const textOf = (message) => message.querySelector(".content")?.textContent || "";

// The longest run of whole sentences at the start of text: up to the last ., ! or ? followed by space.
function sentences(text) {
  const match = /^[\s\S]*[.!?…]["'”’)\]]*\s+/.exec(text);
  return match ? match[0] : "";
}

function readOn(ids, message, final) {
  const id = message.dataset.id;
  const text = textOf(message);
  const from = spoken.get(id) || 0;
  const rest = final ? text.slice(from).trimEnd() : sentences(text.slice(from));
  if (!rest.trim()) return;
  spoken.set(id, from + rest.length);
  say(ids, rest);
}

// A finished reply as it is read out: the bot's name, then the reply or, when long, its start.
export function finishedReply(name, text) {
  const reply = text.trim();
  return `${name}: ${reply.length > LONG ? `${reply.slice(0, LONG)}… ${gettext("reply continues in the conversation")}` : reply}`;
}

function finished(ids, message) {
  const id = message.dataset.id;
  const name = authorOf(message);
  const status = message.dataset.status;
  if (status === "complete") {
    if (said.has(`${id}:done`)) return;
    if (readStreaming() && spoken.has(id)) {
      said.add(`${id}:done`);
      return readOn(ids, message, true);
    }
    say(ids, finishedReply(name, textOf(message)), `${id}:done`);
  } else if (status === "failed" || status === "interrupted") {
    const why = message.querySelector(".error")?.textContent.trim();
    say(ids, why ? phrase(gettext("%(name)s's reply failed: %(why)s"), { name, why }) : phrase(gettext("%(name)s's reply failed."), { name }), `${id}:done`);
  } else if (status === "cancelled") {
    say(ids, phrase(gettext("%(name)s's reply was stopped."), { name }), `${id}:done`);
  }
}

// The element a frame draws, read from its template in place (Turbo's templateContent copies it
// on every read): for looking at, never for putting in the page.
export function drawn(stream) {
  const template = stream.firstElementChild;
  return template instanceof HTMLTemplateElement ? template.content.firstElementChild : null;
}

// What the frame just rendered means for a listener. before: the frame's target element as it
// was before rendering (for a removal), the message a prepend redrew (not news), or null.
export function heard(ids, stream, before) {
  const action = stream.getAttribute("action");
  const target = stream.getAttribute("target") || "";
  if (action === "remove") {
    if (before?.classList.contains("message")) say(ids, gettext("A message was removed."), `${before.dataset.id}:removed`);
    return;
  }
  if (action === "grow") {
    const message = document.getElementById(target)?.closest(".message");
    if (message && readStreaming()) {
      spoken.set(message.dataset.id, spoken.get(message.dataset.id) || 0);
      readOn(ids, message, false);
    }
    return;
  }
  if (action !== "prepend" && action !== "replace") return;
  const id = drawn(stream)?.id;
  const message = id && document.getElementById(id);
  if (!message?.classList.contains("message")) return;
  if (message.classList.contains("assistant")) {
    if (message.dataset.status === "pending" || message.dataset.status === "streaming") {
      say(ids, phrase(gettext("%(name)s is replying"), { name: authorOf(message) }), `${message.dataset.id}:started`);
    } else {
      finished(ids, message);
    }
  } else if (action === "prepend" && !before && message.dataset.by !== me()) {
    say(ids, `${authorOf(message)}: ${textOf(message).trim()}`, `${message.dataset.id}:said`);
  }
}
