/* <liverec-widget slot key token limit [item-id] [ws-url] [endpoint] [poll-interval] [template]>
 *
 * Server-rendered first ({% liverec_widget %}), then upgraded to live updates. Every widget
 * of a page shares one WebSocket (one registration of the page's slots, one socket per tab);
 * it reconnects with jittered exponential backoff, resends the last message number it saw
 * (the server answers with the current lists), and polls the JSON endpoint while the socket
 * cannot connect (blocked by a proxy, server down).
 *
 * Items render through <template class="liverec-item-template"> inside the widget (the server's
 * own item markup, liverec/item.html, rendered with no item: a pushed list is marked up exactly
 * as a server-rendered one), or the document's <template id="..."> named by the `template`
 * attribute, so a site restyles them without touching this file. Fields:
 * [data-field=title|reason|reasons|reasons-box], [data-href] (gets the item URL). Text is only
 * ever set with textContent: no markup from item titles or reasons runs; URLs other than
 * http(s) or relative are dropped.
 *
 * States (attribute data-state, styled by widget.css): "ready" (a list), "empty" (no item:
 * .liverec-empty shows), "loading" (an empty server-rendered list while the first live answer
 * is awaited, at most LOADING_MS: .liverec-loading shows).
 *
 * Changes are announced in a polite live region and never move focus; while the pointer or
 * keyboard focus is inside the list, an update waits until it leaves (nothing shifts under
 * the user's hand). Impressions ("recommendation_shown", once per list, when half of it is
 * on screen in a visible tab) and clicks ("recommendation_clicked") are recorded through
 * window.liverec.track with the recommendation id, slot and position.
 */
(function () {
  "use strict";
  if (customElements.get("liverec-widget")) return;
  var DEFAULT_POLL_MS = 15000, PING_MS = 20000, MAX_BACKOFF_MS = 30000, LOADING_MS = 4000;

  function track(name, props) {
    if (window.liverec && typeof window.liverec.track === "function") {
      window.liverec.track(name, props);
      return true;
    }
    return false;
  }
  function safeUrl(url) {
    if (typeof url !== "string" || !url) return "";
    return /^(https?:\/\/|\/(?!\/)|\.{0,2}\/|\?|#)/i.test(url) ? url : "";
  }
  function signature(items) { return (items || []).map(function (r) { return String(r.item_id); }).join("\u0001"); }

  /* --- one socket per page and token --- */
  var hubs = {};
  function Hub(url, token) {
    this.url = url; this.token = token; this.widgets = []; this.seq = 0; this.retry = 0;
    this.ws = null; this.everOpened = false; this.scheduled = false; this.pingTimer = null;
  }
  Hub.prototype.keys = function () {
    var seen = {};
    return this.widgets.map(function (w) { return w.key; }).filter(function (k) { return !seen[k] && (seen[k] = 1); });
  };
  Hub.prototype.add = function (widget) {
    this.widgets.push(widget);
    if (this.ws && this.ws.readyState === 1) {
      this.ws.send(JSON.stringify({ type: "subscribe", slots: [widget.key], seq: this.seq }));
      widget.setLive(true);
    } else if (!this.scheduled && !(this.ws && this.ws.readyState === 0)) {
      // Widgets upgrade together when the script runs: connect once for all of them.
      var self = this; this.scheduled = true;
      Promise.resolve().then(function () { self.scheduled = false; self.connect(); });
    }
  };
  Hub.prototype.remove = function (widget) {
    this.widgets = this.widgets.filter(function (w) { return w !== widget; });
    if (!this.widgets.length && this.ws) { this.stopped = true; this.ws.close(1000); }
  };
  Hub.prototype.connect = function () {
    if (!this.widgets.length || (this.ws && this.ws.readyState <= 1) || !("WebSocket" in window)) {
      if (!("WebSocket" in window)) this.widgets.forEach(function (w) { w.startPolling(); });
      return;
    }
    this.stopped = false;
    var keys = this.keys();
    // [token transport] The token never goes in the URL (proxies and access logs keep URLs):
    // it is the socket's first message.
    var url = this.url + (this.url.indexOf("?") < 0 ? "?" : "&") +
      "slots=" + encodeURIComponent(keys.join(",")) + "&seq=" + this.seq;
    var ws, self = this;
    try { ws = this.ws = new WebSocket(url); } catch (err) { return this.closed({ code: 1006 }); }
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "auth", token: self.token }));  // [/token transport]
      self.retry = 0; self.everOpened = true;
      var late = self.keys().filter(function (k) { return keys.indexOf(k) < 0; }); // widgets added while connecting
      if (late.length) ws.send(JSON.stringify({ type: "subscribe", slots: late, seq: self.seq }));
      self.widgets.forEach(function (w) { w.setLive(true); });
      clearInterval(self.pingTimer);
      self.pingTimer = setInterval(function () { if (ws.readyState === 1) ws.send('{"type":"ping"}'); }, PING_MS);
    };
    ws.onmessage = function (e) {
      var msg; try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (msg.type !== "recs") return;
      if (msg.seq > self.seq) self.seq = msg.seq;
      self.widgets.forEach(function (w) { if (w.key === (msg.key || msg.slot)) w.receive(msg); });
    };
    ws.onclose = function (e) { if (self.ws === ws) self.closed(e); };
  };
  Hub.prototype.closed = function (e) {
    clearInterval(this.pingTimer);
    this.ws = null;
    this.widgets.forEach(function (w) { w.setLive(false); });
    if (this.stopped) return;
    if (e.code === 4401) { // bad or expired token: the socket will never take it; poll instead
      this.widgets.forEach(function (w) { w.startPolling(); });
      return;
    }
    this.retry = Math.min(this.retry + 1, 8);
    // Never opened, or dropped twice in a row: sockets may be blocked; keep lists fresh meanwhile.
    if (!this.everOpened || this.retry >= 2) this.widgets.forEach(function (w) { w.startPolling(); });
    var delay = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, this.retry)) * (0.75 + Math.random() / 2);
    var self = this;
    setTimeout(function () { self.connect(); }, delay);
  };

  class LiveRecWidget extends HTMLElement {
    connectedCallback() {
      if (this.hub) return;
      this.slot_ = this.getAttribute("slot") || "for-you";
      this.itemId = this.getAttribute("item-id") || "";
      this.key = this.getAttribute("key") || (this.itemId ? this.slot_ + ":" + this.itemId : this.slot_);
      this.token = this.getAttribute("token") || "";
      this.limit = +this.getAttribute("limit") || 8;
      this.pollMs = Math.max(250, +this.getAttribute("poll-interval") || DEFAULT_POLL_MS);
      this.seq = 0;
      this.updates = 0;
      this.list = this.querySelector(".liverec-list");
      this.status = this.querySelector(".liverec-status");
      var tplId = this.getAttribute("template");
      this.tpl = (tplId && document.getElementById(tplId)) || this.querySelector("template.liverec-item-template");
      this.recId = (this.list && this.list.getAttribute("data-liverec-rec")) || this.getAttribute("data-rec-id") || "";
      this.sig = Array.prototype.map.call(this.querySelectorAll("[data-liverec-rec-item]"), function (li) {
        return li.getAttribute("data-liverec-rec-item");
      }).join("\u0001");
      this.shown = {};
      if (!this.sig) {
        var self = this;
        this.setState("loading");
        this.loadingTimer = setTimeout(function () { if (self.getAttribute("data-state") === "loading") self.setState("empty"); }, LOADING_MS);
      }
      this.watch();
      this.hub = hubFor(this);
      this.hub.add(this);
    }
    disconnectedCallback() {
      if (this.hub) this.hub.remove(this);
      this.hub = null;
      this.stopPolling();
      if (this.observer) this.observer.disconnect();
    }
    wsUrl() {
      var url = this.getAttribute("ws-url");
      if (url) return url;
      return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/liverec/ws/";
    }
    setLive(on) {
      if (on) { this.setAttribute("live", ""); this.stopPolling(); } else this.removeAttribute("live");
    }
    receive(msg) {
      // A resync is the server's current state: always taken. Pushes older than what we show are dropped.
      if (!msg.resync && msg.seq <= this.seq) return;
      this.seq = Math.max(this.seq, msg.seq || 0);
      this.show(msg.recs);
    }
    startPolling() {
      if (this.pollTimer) return;
      var self = this;
      var tick = function () {
        var url = (self.getAttribute("endpoint") || "/liverec/recs/") + encodeURIComponent(self.slot_) + "/?k=" +
          self.limit + "&via=widget" + (self.itemId ? "&item_id=" + encodeURIComponent(self.itemId) : "");
        // [token transport] in a header, never in the URL [/token transport]
        fetch(url, { credentials: "same-origin", headers: { "X-LiveRec-Token": self.token } })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (recs) { if (recs && self.pollTimer) self.show(recs); })
          .catch(function () {});
      };
      this.pollTimer = setInterval(tick, this.pollMs);
      this.setAttribute("polling", "");
      tick();
    }
    stopPolling() {
      if (this.pollTimer) clearInterval(this.pollTimer);
      this.pollTimer = null;
      this.removeAttribute("polling");
    }
    busy() {
      return this.list && (this.list.contains(document.activeElement) || this.list.matches(":hover"));
    }
    setState(state) {
      this.setAttribute("data-state", state);
      var loading = this.querySelector(".liverec-loading"), empty = this.querySelector(".liverec-empty");
      if (loading) loading.hidden = state !== "loading";
      if (empty) empty.hidden = state !== "empty";
    }
    show(recs) {
      if (!recs || !this.list) return;
      if (this.loadingTimer) { clearTimeout(this.loadingTimer); this.loadingTimer = null; }
      if (this.getAttribute("data-state") === "loading") this.setState((recs.items || []).length ? "ready" : "empty");
      if (signature(recs.items) === this.sig) return; // same items: nothing to redraw or announce
      if (this.busy()) { this.pending = recs; return; }
      this.pending = null;
      this.render(recs);
    }
    watch() {
      var self = this;
      var flush = function () { if (self.pending && !self.busy()) self.show(self.pending); };
      this.addEventListener("focusout", function () { setTimeout(flush, 0); });
      this.addEventListener("pointerleave", function () { setTimeout(flush, 0); });
      this.addEventListener("click", function (e) { self.clicked(e); });
      this.addEventListener("auxclick", function (e) { if (e.button === 1) self.clicked(e); });
      if ("IntersectionObserver" in window && this.list) {
        this.observer = new IntersectionObserver(function (entries) {
          self.onScreen = entries[entries.length - 1].isIntersecting;
          self.impression();
        }, { threshold: 0.5 });
        this.observer.observe(this.list);
      }
      document.addEventListener("visibilitychange", function () { self.impression(); });
      window.addEventListener("load", function () { self.impression(); });
    }
    items() {
      return Array.prototype.map.call(this.list.querySelectorAll("[data-liverec-rec-item]"), function (li) {
        return li.getAttribute("data-liverec-rec-item");
      });
    }
    impression() {
      if (!this.recId || this.shown[this.recId] || !this.onScreen || document.visibilityState !== "visible") return;
      var items = this.items();
      if (!items.length) return;
      if (track("recommendation_shown", { rec_id: this.recId, slot: this.slot_, items: items })) this.shown[this.recId] = 1;
    }
    clicked(e) {
      var li = e.target.closest && e.target.closest("[data-liverec-rec-item]");
      if (!li || !this.contains(li)) return;
      var itemId = li.getAttribute("data-liverec-rec-item");
      if (track("recommendation_clicked", { item_id: itemId, rec_id: this.recId, slot: this.slot_,
                                            position: +li.getAttribute("data-liverec-pos") || 0 })) {
        window.liverec.flush();
      }
    }
    fill(node, rec, pos) {
      node.setAttribute("data-liverec-rec-item", rec.item_id);
      node.setAttribute("data-liverec-pos", String(pos));
      var title = node.querySelector('[data-field="title"]') || node;
      title.textContent = rec.title || rec.item_id;
      var link = node.querySelector("[data-href]"), url = safeUrl(rec.url);
      if (link && url) link.setAttribute("href", url);
      var reasons = rec.reasons || [];
      var reason = node.querySelector('[data-field="reason"]');
      if (reason) reason.textContent = reasons.length ? reasons[0].text : "";
      var all = node.querySelector('[data-field="reasons"]');
      if (all) {
        reasons.forEach(function (r) { var li = document.createElement("li"); li.textContent = r.text; all.appendChild(li); });
      }
      var box = node.querySelector('[data-field="reasons-box"]');
      if (box) box.hidden = reasons.length < 2;
    }
    render(recs) {
      var ol = this.list, frag = document.createDocumentFragment(), self = this;
      var items = (recs.items || []).slice(0, this.limit);
      items.forEach(function (rec, i) {
        var proto = self.tpl && self.tpl.content.firstElementChild;
        var node = proto ? proto.cloneNode(true) : document.createElement("li");
        self.fill(node, rec, i + 1);
        frag.appendChild(node);
      });
      // Keep the page from jumping: hold the list's height while swapping its children.
      ol.style.minHeight = ol.offsetHeight + "px";
      ol.replaceChildren(frag);
      requestAnimationFrame(function () { ol.style.minHeight = ""; });
      this.sig = signature(recs.items);
      this.recId = recs.id || "";
      ol.setAttribute("data-liverec-rec", this.recId);
      this.setAttribute("data-rec-id", this.recId);
      this.setState(items.length ? "ready" : "empty");
      this.updates += 1;
      this.setAttribute("data-updates", String(this.updates));
      if (this.status) {
        var titles = items.slice(0, 3).map(function (r) { return r.title || r.item_id; });
        this.status.textContent = titles.length ? "Recommendations updated: " + titles.join(", ") : "";
      }
      this.impression();
      this.dispatchEvent(new CustomEvent("liverec:updated", { bubbles: true, detail: { slot: this.slot_, key: this.key, seq: this.seq, recs: recs } }));
    }
  }

  function hubFor(widget) {
    var url = widget.wsUrl(), id = url + "|" + widget.token;
    return hubs[id] || (hubs[id] = new Hub(url, widget.token));
  }

  customElements.define("liverec-widget", LiveRecWidget);
})();
