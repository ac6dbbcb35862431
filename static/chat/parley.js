// Parley's page code: the room socket (reconnect, catch-up, gap repair) and form niceties.
import * as Turbo from "@hotwired/turbo";
import { drawn, heard, readStreaming, setReadStreaming } from "./announce.js";

// The page's element ids, from the one table Python and the templates read too (chat/dom.py).
const ids = JSON.parse(document.querySelector('meta[name="parley-ids"]')?.content || "{}");

// The page's language: Django's JavaScript catalog (/jsi18n/, a classic script before this module)
// defines gettext and interpolate; without it (it failed to load) the English message ids show.
const { gettext = (msgid) => msgid, interpolate = (format) => format } = window.django || {};

// Frames are rendered once for the whole room, in no person's language: each sentence in them says
// where it is (data-i18n: "text" and/or attribute names), its message id (data-msgid, else the
// text itself) and its parts (data-i18n-args); a line already said in every language carries them
// all (data-lines). Shown here in the page's language, before Turbo puts the fragment in.
function translateFragment(root) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    const args = JSON.parse(element.dataset.i18nArgs || "{}");
    for (const where of element.dataset.i18n.split(" ")) {
      const msgid = element.dataset.msgid || (where === "text" ? element.textContent : element.getAttribute(where));
      if (!msgid) continue;
      const said = interpolate(gettext(msgid), args, true);
      if (where === "text") element.textContent = said;
      else element.setAttribute(where, said);
    }
  }
  for (const element of root.querySelectorAll("[data-lines]")) {
    const lines = JSON.parse(element.dataset.lines);
    element.textContent = lines[document.documentElement.lang] ?? element.textContent;
  }
}
document.addEventListener("turbo:before-stream-render", (event) => {
  const template = event.target.firstElementChild;
  if (template instanceof HTMLTemplateElement) translateFragment(template.content);
});

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

// Partials broadcast to a whole room carry no CSRF token: every Turbo request sends the page's.
document.addEventListener("turbo:before-fetch-request", (event) => {
  event.detail.fetchOptions.headers["X-CSRFToken"] = csrfToken();
});

// The close code of a page whose person may no longer read its room (chat/delivery/fanout.py REMOVED).
const NO_LONGER_ALLOWED = 4403;

// The room socket as an element: Turbo Drive connects it on entering a room, disconnects on leaving.
class RoomStream extends HTMLElement {
  connectedCallback() {
    this.retries = 0;
    this.closed = false;
    this.open();
  }

  disconnectedCallback() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) {
      Turbo.disconnectStreamSource(this.socket);
      this.socket.close();
    }
  }

  open() {
    // On every (re)connect the server replays what changed after the room's event number the page
    // was last in step with (numbers, not times: no slack for clocks, nothing it had sent again).
    const after = document.getElementById(ids.synced)?.dataset.after || this.getAttribute("after");
    // And the mark of the title and topic it shows: they come again only if the room's changed meanwhile.
    const heading = document.getElementById(ids.heading)?.dataset.mark || "";
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // A guest who has not posted yet is counted in presence as the guest their page offers to be.
    const guest = this.getAttribute("guest") ? `&guest=${encodeURIComponent(this.getAttribute("guest"))}` : "";
    const url = `${scheme}://${location.host}${this.getAttribute("socket")}?after=${encodeURIComponent(after)}&heading=${encodeURIComponent(heading)}${guest}`;
    const socket = (this.socket = new WebSocket(url));
    Turbo.connectStreamSource(socket);
    socket.addEventListener("open", () => document.body.classList.remove("offline"));
    // Back-off starts over only once the server has sent something: a socket it accepts and then
    // drops at once (its database down, say) must not make every page reconnect in a tight loop.
    socket.addEventListener("message", () => (this.retries = 0), { once: true });
    socket.addEventListener("close", (event) => {
      Turbo.disconnectStreamSource(socket);
      if (this.closed) return;
      if (event.code === NO_LONGER_ALLOWED) {
        // Removed from the room, or it closed to members: the page again says where this person stands
        // (the room's not-found page), rather than knocking at a door that stays shut. A navigation
        // under way (Turbo marks it aria-busy: the person's own "Leave the room", say) lands first.
        this.closed = true;
        const reload = () => {
          if (document.querySelector("[aria-busy]")) setTimeout(reload, 100);
          else if (this.isConnected) Turbo.visit(location.href, { action: "replace" });
        };
        reload();
        return;
      }
      document.body.classList.add("offline");
      const delay = Math.min(10000, 500 * 2 ** this.retries++) * (0.5 + Math.random() / 2);
      this.timer = setTimeout(() => this.open(), delay);
    });
  }

  // Open the socket again now (the person's name changed: presence learns it as the page rejoins).
  reconnect() {
    this.retries = 0;
    this.socket?.close();
  }

  // A growth frame that does not follow on from the page's text: fetch the whole message instead.
  // One repair at a time per message: the growth frames that keep coming meanwhile would each ask again.
  async repair(messageId) {
    this.repairing ??= new Set();
    if (this.repairing.has(messageId)) return;
    this.repairing.add(messageId);
    try {
      const response = await fetch(`${this.getAttribute("src")}messages/${messageId}`, {
        headers: { Accept: "text/vnd.turbo-stream.html" },
      });
      if (response.ok) Turbo.renderStreamMessage(await response.text());
    } catch {
      // Offline: the socket's reconnect and catch-up bring the page back in step.
    } finally {
      this.repairing.delete(messageId);
    }
  }
}
customElements.define("room-stream", RoomStream);

// Messages carry their row's revision: a replace or prepend older than what the page shows (a
// repair answer that crossed the final frame, frames of two processes crossing) is dropped.
// A message's place in the list is its id's, whatever order frames come in: a prepend of a message
// the page shows already (a catch-up's frames and the live ones meeting) replaces it where it is
// rather than moving it to the top, and a new one goes in among the others by id.
document.addEventListener("turbo:before-stream-render", (event) => {
  const action = event.target.getAttribute("action");
  if (action !== "replace" && action !== "prepend") return;
  const incoming = drawn(event.target);
  if (!incoming?.id || incoming.dataset.revision === undefined) return;
  const render = event.detail.render;
  // Compared when it renders, not when it arrives: frames that arrive together render in turn.
  event.detail.render = async (stream) => {
    const shown = document.getElementById(incoming.id);
    if (shown && Number(shown.dataset.revision) > Number(incoming.dataset.revision)) return;
    const mine = shown?.querySelector(".feedback")?.dataset.mine; // the page's own vote (see Votes below)
    if (action === "prepend" && stream.target === ids.messages) insertById(stream.templateContent.firstElementChild, shown);
    else await render(stream);
    const feedback = mine && document.getElementById(`${incoming.id}_feedback`);
    if (feedback) {
      feedback.dataset.mine = mine;
      showMine(feedback);
    }
  };
});

// The list is newest first: a message goes before the first one with a smaller id (else last of
// the messages, before the scroll-back link), or in place of the one it repeats.
function insertById(message, shown) {
  if (shown) return shown.replaceWith(message);
  const list = document.getElementById(ids.messages);
  const id = Number(message.dataset.id);
  const older = [...list.children].find((child) => child.classList.contains("message") && Number(child.dataset.id) < id);
  list.insertBefore(message, older || list.querySelector(":scope > turbo-frame.older"));
}

// A keyboard or screen reader user on a message's control (Stop, a vote) keeps their place when a
// frame draws it anew: the same control in the element that replaced its holder, else the holder.
document.addEventListener("turbo:before-stream-render", (event) => {
  if (event.target.getAttribute("action") === "grow") return; // it only appends text: per token, skipped
  const render = event.detail.render;
  event.detail.render = async (stream) => {
    const active = document.activeElement;
    const holder = active && active !== document.body ? active.closest("[id]") : null;
    await render(stream);
    if (!holder || active.isConnected) return;
    const again = document.getElementById(holder.id);
    if (again) refocus(again, active === holder ? "" : active.tagName.toLowerCase() + [...active.classList].map((name) => `.${CSS.escape(name)}`).join(""));
  };
});
function refocus(holder, path) {
  const control = path ? holder.querySelector(path) : null;
  if (control && control.checkVisibility?.() !== false) return control.focus({ preventScroll: true });
  if (!holder.hasAttribute("tabindex")) holder.tabIndex = -1;
  holder.focus({ preventScroll: true }); // where the reader left the list, not scrolled to
}

// Parley's growth action: <turbo-stream action="grow" target="message_<pk>_content" o="<offset>">text</turbo-stream>.
// The text is the element's own (no template, to keep the frame small) and starts at character
// `o` of the message: repeats are trimmed, and a gap is repaired by fetching the whole message.
Turbo.StreamActions.grow = function () {
  const target = document.getElementById(this.target);
  if (!target || target.dataset.length === undefined) return;
  const have = Number(target.dataset.length);
  const offset = Number(this.getAttribute("o"));
  if (offset > have) {
    document.querySelector("room-stream")?.repair(target.closest(".message").dataset.id);
    return;
  }
  const chars = Array.from(this.textContent);
  const fresh = chars.slice(have - offset).join("");
  if (fresh) target.append(fresh);
  target.dataset.length = String(Math.max(have, offset + chars.length));
};

// Every frame the page applies, told to the announcer once it has rendered (announce.js). Added
// after the revision check above, so it sees what that check let through.
document.addEventListener("turbo:before-stream-render", (event) => {
  const stream = event.target;
  const render = event.detail.render;
  event.detail.render = async (element) => {
    // What the frame takes away (remove), or redraws (a prepend of a message already shown: not news).
    const action = stream.getAttribute("action");
    const id = action === "remove" ? stream.getAttribute("target") : action === "prepend" ? drawn(stream)?.id : null;
    const before = id ? document.getElementById(id) : null;
    await render(element);
    heard(ids, stream, before);
  };
});
document.addEventListener("change", (event) => {
  if (event.target.id === ids.read_stream) setReadStreaming(event.target.checked);
});

// Enter sends, Shift+Enter adds a line; after sending, the box clears and keeps focus. On a touch
// screen Enter adds a line and Send sends, as phone messengers do: an on-screen keyboard has no
// Shift+Enter, and the box's hint says so (data-touch-placeholder). The room's box and the direct
// page's both. While the mention menu is open, arrows, Enter, Tab and Escape are the menu's.
const touchScreen = matchMedia("(hover: none) and (pointer: coarse)");
document.addEventListener("keydown", (event) => {
  const box = event.target;
  if (box.id !== ids.composer || event.isComposing) return;
  if (mentions.keydown(box, event)) return;
  if (event.key !== "Enter" || event.shiftKey || touchScreen.matches) return;
  event.preventDefault();
  if (box.value.trim()) box.form.requestSubmit();
});
function fitComposerHint() {
  const box = document.getElementById(ids.composer);
  if (box?.dataset.touchPlaceholder && touchScreen.matches) box.placeholder = box.dataset.touchPlaceholder;
}

// The mention menu: typing @ offers the bots (the message box is a combobox while it is open);
// picking one writes @Key. Without JavaScript, typing the key does the same.
const mentions = {
  menu: () => document.getElementById(ids.mention_menu),
  // The "@partial" just before the caret, if the caret ends one.
  typed(box) {
    const before = box.value.slice(0, box.selectionStart);
    const match = /(^|[^\w@.])@(\w*)$/.exec(before);
    return match ? { start: before.length - match[2].length - 1, prefix: match[2].toLowerCase() } : null;
  },
  options: (menu) => [...menu.querySelectorAll('[role="option"]:not([hidden])')],
  update(box) {
    const menu = this.menu();
    if (!menu) return;
    const typed = this.typed(box);
    for (const option of menu.querySelectorAll('[role="option"]')) {
      option.hidden = !typed || !option.dataset.key.toLowerCase().startsWith(typed.prefix);
    }
    const options = this.options(menu);
    if (!typed || !options.length) return this.close(box);
    if (menu.hidden) this.open(box, menu);
    if (!options.some((option) => option.getAttribute("aria-selected") === "true")) this.select(box, options[0]);
  },
  // The box is a combobox only while its menu is open, as GitHub's text-expander does: at rest a
  // screen reader meets a plain multi-line text box (a textarea takes no role in ARIA in HTML).
  open(box, menu) {
    menu.hidden = false;
    box.setAttribute("role", "combobox");
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", menu.id);
    box.setAttribute("aria-expanded", "true");
  },
  select(box, option) {
    for (const other of this.menu().querySelectorAll('[role="option"]')) other.setAttribute("aria-selected", String(other === option));
    box.setAttribute("aria-activedescendant", option.id);
  },
  close(box) {
    const menu = this.menu();
    if (!menu) return;
    menu.hidden = true;
    for (const name of ["role", "aria-autocomplete", "aria-controls", "aria-expanded", "aria-activedescendant"]) {
      box.removeAttribute(name);
    }
    for (const option of menu.querySelectorAll('[role="option"]')) option.setAttribute("aria-selected", "false");
  },
  pick(box, option) {
    const typed = this.typed(box);
    if (!typed) return this.close(box);
    const end = box.selectionStart;
    const mention = `@${option.dataset.key} `;
    box.setRangeText(mention, typed.start, end, "end");
    drafts.keep(box);
    this.close(box);
    box.focus();
  },
  keydown(box, event) {
    const menu = this.menu();
    if (!menu || menu.hidden) return false;
    if (!this.typed(box)) {
      this.close(box); // the caret left the "@..." it was offered for
      return false;
    }
    const options = this.options(menu);
    const current = options.findIndex((option) => option.getAttribute("aria-selected") === "true");
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.select(box, options[(current + step + options.length) % options.length]);
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && current >= 0) {
      this.pick(box, options[current]);
    } else if (event.key === "Escape") {
      this.close(box);
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  },
};
document.addEventListener("input", (event) => {
  if (event.target.id !== ids.composer) return;
  mentions.update(event.target);
  drafts.keep(event.target);
});

// What is being written in a room stays with the tab until it is sent (sessionStorage, by the
// room's form): a reload, a visit to another room, or a page that was out of date (signed in from
// another tab: templates/403_csrf.html) loses nothing.
const drafts = {
  box: () => document.querySelector(`#${ids.new_message} #${ids.composer}`),
  key: (box) => `parley-draft:${box.form.action}`,
  keep(box) {
    if (!box.form || box.form.id !== ids.new_message) return;
    if (box.value) sessionStorage.setItem(this.key(box), box.value);
    else sessionStorage.removeItem(this.key(box));
  },
  restore() {
    const box = this.box();
    const kept = box && sessionStorage.getItem(this.key(box));
    if (kept && !box.value) box.value = kept;
  },
};
document.addEventListener("focusout", (event) => {
  // A click on an option lands after focus left the box: close on the next turn, not before it.
  if (event.target.id === ids.composer) setTimeout(() => document.activeElement !== event.target && mentions.close(event.target), 150);
});
document.addEventListener("mousedown", (event) => {
  const option = event.target.closest?.('[role="option"]');
  if (!option?.closest(`#${ids.mention_menu}`)) return;
  event.preventDefault(); // keep the focus (and the caret) in the box
  mentions.pick(document.getElementById(ids.composer), option);
});

// Votes. Frames of a reply's feedback are rendered once for the whole room, so the page keeps
// its person's own vote (data-mine) itself: carried onto each new feedback element, set on voting.
function showMine(feedback) {
  for (const button of feedback.querySelectorAll("button.vote")) {
    const kind = button.classList.contains("up") ? "up" : "down";
    button.setAttribute("aria-pressed", String(feedback.dataset.mine === kind));
  }
}
document.addEventListener("turbo:before-stream-render", (event) => {
  const stream = event.target;
  if (stream.getAttribute("action") !== "replace" || !stream.getAttribute("target")?.endsWith("_feedback")) return;
  const render = event.detail.render;
  event.detail.render = async (element) => {
    const shown = document.getElementById(element.getAttribute("target"));
    const incoming = drawn(stream);
    // Counts from two processes can cross: the older ones (by the room's event number) are dropped.
    if (shown && incoming && Number(shown.dataset.seq) > Number(incoming.dataset.seq)) return;
    const mine = shown?.dataset.mine;
    await render(element);
    const fresh = document.getElementById(element.getAttribute("target"));
    if (fresh && mine) {
      fresh.dataset.mine = mine;
      showMine(fresh);
    }
  };
});
document.addEventListener("turbo:before-fetch-request", (event) => {
  const form = event.target.closest?.(".feedback form");
  const body = event.detail.fetchOptions.body;
  if (!form || !body?.get) return;
  // Pressing your own vote again takes it back.
  if (body.get("value") === form.closest(".feedback").dataset.mine) body.set("value", "none");
  form.dataset.sent = body.get("value");
});
document.addEventListener("turbo:submit-end", (event) => {
  // The room's frame may have replaced the form before its answer came: Turbo then dispatches on
  // the document, and the submission still knows its (detached) form.
  const form = event.detail.formSubmission?.formElement || event.target;
  const feedback = form.closest?.(".feedback");
  if (!feedback || !event.detail.success) return;
  // The broadcast may have replaced the element already: mark whichever is on the page now.
  const shown = document.getElementById(feedback.id) || feedback;
  if (form.dataset.sent === "none") delete shown.dataset.mine;
  else shown.dataset.mine = form.dataset.sent;
  showMine(shown);
});

document.addEventListener("turbo:submit-end", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return; // a detached form's end is dispatched on <html>
  if (form.action.endsWith("/profile") && event.detail.success) {
    form.closest("details")?.removeAttribute("open");
    document.querySelector("room-stream")?.reconnect();
  }
  if (form.id !== ids.new_message || !event.detail.success) return;
  form.reset();
  const box = document.getElementById(ids.composer);
  if (box) drafts.keep(box);
  mentions.close(box);
  box?.focus();
});

// Follow the stream unless the reader scrolled up; then offer a way back down.
// (#messages is column-reverse: its newest end is scrollTop 0, older text is negative.)
document.addEventListener("scroll", (event) => {
  if (event.target.id !== ids.messages) return;
  const jump = document.getElementById(ids.jump);
  if (jump) jump.hidden = event.target.scrollTop > -80;
}, true);

document.addEventListener("click", async (event) => {
  if (event.target.id === ids.jump) {
    // Not smooth: a growing reply would cut a smooth scroll short.
    document.getElementById(ids.messages).scrollTo({ top: 0 });
  }
  if (event.target.classList.contains("copy")) {
    const code = event.target.closest(".highlight").querySelector("code").textContent;
    await navigator.clipboard.writeText(code);
    event.target.textContent = gettext("Copied");
    setTimeout(() => (event.target.textContent = gettext("Copy")), 1500);
  }
});

// Code blocks in replies get a copy button (sanitized HTML carries none).
function addCopyButtons(root = document) {
  for (const block of within(root, ".message .highlight:not([data-copy])")) {
    block.dataset.copy = "";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = gettext("Copy");
    button.setAttribute("aria-label", gettext("Copy code"));
    block.append(button);
  }
}
// Times come in UTC ("14:05 UTC", for a page without JavaScript); shown here in the reader's own
// zone and language, with the day when it is not today.
function showLocalTimes(root = document) {
  for (const time of within(root, "time[datetime]:not([data-local])")) {
    const when = new Date(time.dateTime);
    if (Number.isNaN(when.getTime())) continue;
    time.dataset.local = "";
    const today = when.toDateString() === new Date().toDateString();
    time.textContent = new Intl.DateTimeFormat(undefined, today
      ? { hour: "numeric", minute: "2-digit" }
      : { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" }).format(when);
    time.title = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" }).format(when);
  }
}

// The conversation is a feed of articles; an empty one is no valid feed (ARIA requires its
// articles), so until its first message it is a plain named region.
function markFeed() {
  const list = document.getElementById(ids.messages);
  const role = list?.childElementCount ? "feed" : "region";
  if (list && list.getAttribute("role") !== role) list.setAttribute("role", role);
}

function pageSettings() {
  const box = document.getElementById(ids.read_stream);
  if (box) box.checked = readStreaming();
}

// The elements under root (root too, unless it is the document) that match selector.
function within(root, selector) {
  const found = [...root.querySelectorAll(selector)];
  return root.matches?.(selector) ? [root, ...found] : found;
}

// Only what was added is looked at: a growth frame adds text, not elements, so the page's work
// per token does not grow with its history.
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      addCopyButtons(node);
      showLocalTimes(node);
    }
  }
  markFeed();
}).observe(document.documentElement, { childList: true, subtree: true });
document.addEventListener("turbo:load", () => {
  addCopyButtons();
  showLocalTimes();
  markFeed();
  pageSettings();
  fitComposerHint();
  drafts.restore();
});

// The page's person's own messages sit on the right in their colour; everyone else's on the left,
// and Stop and Retry show on the replies to their messages (the server checks anyway).
// The rule is made here, through the CSS object model: the Content-Security-Policy lets no page
// carry an inline style, and the person (so the rule) may change while Turbo keeps the document.
const mine = new CSSStyleSheet();
document.adoptedStyleSheets = [...document.adoptedStyleSheets, mine];
function markMine() {
  const me = document.querySelector('meta[name="parley-me"]')?.content || "";
  mine.replaceSync(/^[0-9a-f]+$/.test(me)
    ? `.message[data-by="${me}"] { --side: flex-end; --bubble: var(--user); }
       .message[data-asker="${me}"] form.action { display: inline; }`
    : "");
}
markMine();
document.addEventListener("turbo:render", markMine);
document.addEventListener("turbo:load", markMine);

// A room opened at one message (?around=, a search result) shows it in the middle of the list.
document.addEventListener("turbo:load", () => {
  document.querySelector(`#${ids.messages} [aria-current="true"]`)?.scrollIntoView({ block: "center" });
});
