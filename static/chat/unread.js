// Unread on a room page: the page tells the server what it has read (at most every few seconds, and
// only while it is visible), marks the messages that mention its person, and streams "Catch me up"
// into this page alone.
import { fetchEventSource } from "@microsoft/fetch-event-source";

const ids = JSON.parse(document.querySelector('meta[name="parley-ids"]')?.content || "{}");
const { gettext = (msgid) => msgid } = window.django || {};
const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

// Reading: a frame seen while the page is visible means the room was read; one POST covers every
// frame of the next few seconds (the server moves the position to the room's latest event).
let pending = null;
function readSoon() {
  const stream = document.querySelector("room-stream");
  if (!stream?.getAttribute("read") || pending || document.visibilityState !== "visible") return;
  pending = setTimeout(() => {
    pending = null;
    if (!stream.isConnected || document.visibilityState !== "visible") return;
    fetch(stream.getAttribute("read"), { method: "POST", headers: { "X-CSRFToken": csrfToken() } }).catch(() => {});
  }, 1000 * Number(stream.getAttribute("read-every") || 5));
}
document.addEventListener("turbo:before-stream-render", readSoon);
document.addEventListener("visibilitychange", readSoon);

// Mentions: @handle (the meta the room page carries for a signed-in or named person) marks a message
// for them alone; frames are rendered once for the whole room, so each page marks its own.
const escaped = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
function markMentions(messages) {
  const handle = document.querySelector('meta[name="parley-handle"]')?.content;
  const list = document.getElementById(ids.messages);
  if (!handle || !list) return;
  const mention = new RegExp(`(^|[^\\w@.])@${escaped(handle)}(?![\\w-])`, "i");
  // The room's messages, those scrolled back to (in the older frames) too.
  for (const message of messages || list.querySelectorAll(".message")) {
    const text = message.querySelector(".content")?.textContent || "";
    message.classList.toggle("mentioned", mention.test(text));
  }
}
// The ids of the messages that changed since the last animation frame, marked then: a streaming
// reply's, not the whole history's, on every token (ids: a page that is not drawn, where animation
// frames wait, keeps no element it has dropped).
const changed = new Set();
let marking = false;
new MutationObserver((records) => {
  for (const record of records) {
    const where = record.target.nodeType === Node.ELEMENT_NODE ? record.target : record.target.parentElement;
    const message = where?.closest(".message");
    if (message) changed.add(message.id);
    for (const node of message ? [] : record.addedNodes) {
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      if (node.matches(".message")) changed.add(node.id);
      for (const inner of node.querySelectorAll(".message")) changed.add(inner.id);
    }
  }
  if (changed.size && !marking) {
    marking = true;
    requestAnimationFrame(markChanged);
  }
}).observe(document.documentElement, { childList: true, subtree: true, characterData: true });
function markChanged() {
  marking = false;
  const list = document.getElementById(ids.messages);
  // Only the room's own (not a search result's), and only those still shown.
  const messages = [...changed].map((id) => document.getElementById(id)).filter((message) => message && list?.contains(message));
  changed.clear();
  markMentions(messages);
}
document.addEventListener("turbo:load", () => markMentions());

// Catch me up: the summary streams into this page only, over SSE (nothing of it is saved or sent to the room).
function showCatchUp() {
  document.querySelector(`#${ids.catch_up} button`)?.removeAttribute("hidden");
}
document.addEventListener("turbo:load", showCatchUp);
showCatchUp();
document.addEventListener("click", (event) => {
  const button = event.target.closest?.(`#${ids.catch_up} button`);
  if (!button) return;
  const section = button.closest("section");
  const summary = document.getElementById(ids.catch_up_summary);
  button.disabled = true;
  summary.textContent = "";
  summary.dataset.status = "streaming";
  const end = (status, problem) => {
    summary.dataset.status = status;
    if (problem) summary.append(Object.assign(document.createElement("p"), { className: "error", textContent: problem }));
  };
  fetchEventSource(section.dataset.src, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": csrfToken() },
    body: `after=${encodeURIComponent(section.dataset.after)}`,
    openWhenHidden: true,
    onopen: async (response) => {
      if (!response.ok) {
        const problem = await response.json().catch(() => ({ error: response.statusText }));
        throw new Error(problem.error);
      }
    },
    onmessage: (message) => {
      if (message.event === "text") summary.append(JSON.parse(message.data).text);
      else if (message.event === "error") end("failed", JSON.parse(message.data).error);
      else if (message.event === "done" && summary.dataset.status === "streaming") end("complete");
    },
    onerror: (error) => {
      throw error; // no retry: a summary is not resumable
    },
  }).catch((error) => {
    end("failed", error.message || gettext("The connection to Parley was lost."));
    button.disabled = false;
  });
});
