// The direct chat page: the conversation lives in the tab; each turn streams over SSE.
// Short conversations go as GET with EventSource, long ones as POST with fetch-event-source.
import { fetchEventSource } from "@microsoft/fetch-event-source";
import { finishedReply, phrase, say } from "./announce.js";

const ids = JSON.parse(document.querySelector('meta[name="parley-ids"]')?.content || "{}");

// Django's JavaScript catalog (/jsi18n/) says these in the page's language; English without it.
const { gettext = (msgid) => msgid } = window.django || {};

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

class DirectChat extends HTMLElement {
  connectedCallback() {
    this.bot = this.getAttribute("bot");
    this.key = `parley-direct-${this.bot}`;
    this.list = this.querySelector('[data-role="messages"]');
    this.form = this.querySelector('[data-role="form"]');
    this.error = this.querySelector('[data-role="error"]');
    this.box = this.form.querySelector("textarea");
    this.conversation = JSON.parse(sessionStorage.getItem(this.key) || "[]");
    this.conversation.forEach((m) => this.show(m.role, m.content));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    // Enter sends as in a room: parley.js's keys for every message box.
    this.querySelector('[data-role="clear"]').addEventListener("click", () => {
      this.finish?.();
      this.conversation = [];
      this.save();
      this.list.replaceChildren();
    });
  }

  disconnectedCallback() {
    this.finish?.();
  }

  save() {
    sessionStorage.setItem(this.key, JSON.stringify(this.conversation));
  }

  // Newest first in the DOM, shown bottom-up by column-reverse, like the rooms.
  show(role, text, status = "complete") {
    const item = document.createElement("div");
    item.className = `message ${role}`;
    item.dataset.status = status;
    const content = document.createElement("div");
    content.className = "content text";
    content.textContent = text;
    item.append(content);
    this.list.prepend(item);
    return item;
  }

  stop() {
    this.controller?.abort();
    this.source?.close();
  }

  send() {
    const text = this.box.value.trim();
    if (!text || this.finish) return;
    this.error.textContent = "";
    this.conversation.push({ role: "user", content: text });
    this.save();
    const asked = this.show("user", text);
    this.form.reset();
    this.box.focus();
    const reply = this.show("assistant", "", "streaming");
    const name = this.getAttribute("name");
    say(ids, phrase(gettext("%(name)s is replying"), { name }));
    const content = reply.querySelector(".content");
    // Stop closes the stream; the server closes the model's stream as soon as it sees that.
    const stop = document.createElement("button");
    stop.type = "button";
    stop.className = "stop";
    stop.textContent = gettext("Stop");
    stop.addEventListener("click", () => {
      reply.dataset.status = "cancelled";
      handlers.done();
    });
    reply.append(stop);
    let answer = "";
    // One reply at a time in a private chat: Send waits until this one ends or is stopped.
    const send = this.form.querySelector('button[type="submit"]');
    send.disabled = true;
    const handlers = {
      text: (data) => {
        answer += JSON.parse(data).text;
        content.textContent = answer;
      },
      error: (data) => {
        reply.dataset.status = "failed";
        const error = document.createElement("p");
        error.className = "error";
        error.textContent = JSON.parse(data).error;
        reply.append(error);
        say(ids, phrase(gettext("%(name)s's reply failed: %(why)s"), { name, why: error.textContent }));
      },
      done: () => {
        if (this.finish !== handlers.done) return; // already ended
        this.stop();
        this.finish = null;
        send.disabled = false;
        stop.remove();
        if (reply.dataset.status === "streaming") reply.dataset.status = "complete";
        if (reply.dataset.status === "complete" && answer) say(ids, finishedReply(name, answer));
        if (reply.dataset.status === "cancelled") say(ids, phrase(gettext("%(name)s's reply was stopped."), { name }));
        if (answer) {
          this.conversation.push({ role: "assistant", content: answer });
          this.save();
        }
      },
    };
    // Whatever ends the reply (its last event, Stop, Start over, leaving the page) ends it here.
    this.finish = handlers.done;
    const body = JSON.stringify({ bot: this.bot, messages: this.conversation });
    const query = `bot=${encodeURIComponent(this.bot)}&messages=${encodeURIComponent(JSON.stringify(this.conversation))}`;
    const endpoint = this.getAttribute("endpoint");
    if (query.length <= Number(this.getAttribute("max-query"))) {
      this.source = new EventSource(`${endpoint}?${query}`);
      for (const [name, handle] of Object.entries(handlers)) {
        this.source.addEventListener(name, (event) => handle(event.data));
      }
      // An EventSource reconnects by itself; a reply is not resumable, so a failure ends it.
      this.source.onerror = () => {
        if (this.finish !== handlers.done) return;
        handlers.error(JSON.stringify({ error: gettext("The connection to Parley was lost.") }));
        handlers.done();
      };
    } else {
      this.controller = new AbortController();
      fetchEventSource(endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body,
        signal: this.controller.signal,
        openWhenHidden: true,
        onopen: async (response) => {
          if (!response.ok) {
            // Refused (too long, too many): nothing was sent, so the message goes back in the box
            // and its bubbles go, and the form says why.
            const problem = await response.json().catch(() => ({ error: response.statusText }));
            this.conversation.pop();
            this.save();
            this.box.value = text;
            asked.remove();
            reply.remove();
            handlers.done();
            this.error.textContent = problem.error;
            throw new Error(problem.error);
          }
        },
        onmessage: (message) => handlers[message.event]?.(message.data),
        onerror: (error) => {
          if (this.finish === handlers.done) {
            handlers.error(JSON.stringify({ error: error.message || gettext("The connection to Parley was lost.") }));
            handlers.done();
          }
          throw error; // do not retry: a reply is not resumable
        },
      }).catch(() => {});
    }
  }
}
customElements.define("direct-chat", DirectChat);
