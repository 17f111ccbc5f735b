/* <liverec-widget slot token limit>: server-rendered first, then upgraded to live updates
 * over a WebSocket (reconnects with backoff; falls back to polling the JSON endpoint).
 * Item markup comes from the <template class="liverec-item-template"> child, so a site can
 * restyle it; text is set with textContent (no HTML from item titles ever runs).
 */
(function () {
  "use strict";
  if (customElements.get("liverec-widget")) return;
  var POLL_MS = 15000;

  class LiveRecWidget extends HTMLElement {
    connectedCallback() {
      this.slot_ = this.getAttribute("slot") || "for-you";
      this.token = this.getAttribute("token") || "";
      this.limit = +this.getAttribute("limit") || 8;
      this.seq = 0;
      this.retry = 0;
      this.updates = 0;
      this.list = this.querySelector(".liverec-list");
      this.tpl = this.querySelector("template.liverec-item-template");
      this.connect();
    }
    disconnectedCallback() { this.closed = true; if (this.ws) this.ws.close(); clearTimeout(this.pollTimer); }
    connect() {
      if (this.closed || !("WebSocket" in window)) return this.poll();
      var proto = location.protocol === "https:" ? "wss://" : "ws://";
      var url = proto + location.host + "/liverec/ws/?token=" + encodeURIComponent(this.token) + "&slots=" + encodeURIComponent(this.slot_);
      var ws = this.ws = new WebSocket(url), self = this;
      ws.onopen = function () { self.retry = 0; self.setAttribute("live", ""); clearTimeout(self.pollTimer); };
      ws.onmessage = function (e) {
        var msg; try { msg = JSON.parse(e.data); } catch (err) { return; }
        if (msg.type === "recs" && msg.slot === self.slot_) self.render(msg.recs, msg.seq);
      };
      ws.onclose = function (e) {
        self.removeAttribute("live");
        if (self.closed || e.code === 4401) return self.poll(); // bad token: never retry the socket
        self.retry = Math.min(self.retry + 1, 6);
        var delay = Math.min(30000, 500 * Math.pow(2, self.retry)) * (0.75 + Math.random() / 2);
        if (self.retry >= 3) self.poll(); // sockets blocked? keep the list fresh meanwhile
        setTimeout(function () { self.connect(); }, delay);
      };
    }
    poll() {
      var self = this;
      clearTimeout(this.pollTimer);
      this.pollTimer = setTimeout(function () {
        fetch("/liverec/recs/" + encodeURIComponent(self.slot_) + "/?k=" + self.limit + "&token=" + encodeURIComponent(self.token))
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (recs) { if (recs) self.render(recs, self.seq); })
          .catch(function () {})
          .then(function () { if (!self.ws || self.ws.readyState !== 1) self.poll(); });
      }, POLL_MS);
    }
    render(recs, seq) {
      if (seq && seq < this.seq) return; // stale message after a resync
      this.seq = seq || this.seq;
      var ol = this.list, frag = document.createDocumentFragment(), self = this;
      (recs.items || []).slice(0, this.limit).forEach(function (rec) {
        var node = self.tpl ? self.tpl.content.firstElementChild.cloneNode(true) : document.createElement("li");
        node.setAttribute("data-liverec-item", rec.item_id);
        var title = node.querySelector('[data-field="title"]') || node;
        title.textContent = rec.title || rec.item_id;
        var link = node.querySelector("[data-href]");
        if (link && rec.url) link.setAttribute("href", rec.url);
        var reason = node.querySelector('[data-field="reason"]');
        if (reason) reason.textContent = rec.reasons && rec.reasons.length ? rec.reasons[0].text : "";
        frag.appendChild(node);
      });
      // Keep the page from jumping: hold the list's height while swapping its children.
      ol.style.minHeight = ol.offsetHeight + "px";
      ol.replaceChildren(frag);
      ol.setAttribute("data-liverec-rec", recs.id || "");
      requestAnimationFrame(function () { ol.style.minHeight = ""; });
      this.updates += 1;
      this.setAttribute("data-updates", String(this.updates));
      this.setAttribute("data-rec-id", recs.id || "");
      this.dispatchEvent(new CustomEvent("liverec:updated", { bubbles: true, detail: { slot: this.slot_, seq: seq, recs: recs } }));
    }
  }
  customElements.define("liverec-widget", LiveRecWidget);
})();
