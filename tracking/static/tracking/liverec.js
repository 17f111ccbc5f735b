/* LiveRec tracker: autocapture, batching, offline queue, consent. No build step.
 * Drop in with {% liverec_tracker %} (one script tag). API: liverec.track(name, props),
 * liverec.identify(userId), liverec.consent(bool), liverec.flush().
 */
(function (w, d) {
  "use strict";
  if (w.liverec && w.liverec._loaded) return;
  var script = d.currentScript || d.querySelector("script[data-endpoint]");
  var cfg = script ? script.dataset : {};
  var ENDPOINT = cfg.endpoint || "/liverec/events/";
  var KEY = cfg.siteKey || "";
  var COOKIE = cfg.cookie || "lr_vid";
  var FLUSH_MS = +cfg.flushMs || 1000, FLUSH_SIZE = +cfg.flushSize || 20;
  var QUEUE_KEY = "lr_queue", CONSENT_KEY = "lr_consent", MAX_QUEUE = 500, MAX_BATCH = 100;
  var store = (function () { try { var s = w.localStorage; s.setItem("lr_t", "1"); s.removeItem("lr_t"); return s; } catch (e) { return null; } })();
  var memQueue = [], timer = null, backoff = 0, inflight = false;

  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (c) {
      return (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16);
    });
  }
  function getCookie(name) {
    var m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }
  function visitorId() {
    var vid = getCookie(COOKIE) || (store && store.getItem(COOKIE)) || "";
    if (!/^[A-Za-z0-9_\-]{8,64}$/.test(vid)) vid = uuid().replace(/-/g, "");
    d.cookie = COOKIE + "=" + vid + "; path=/; max-age=31536000; samesite=lax";
    if (store) store.setItem(COOKIE, vid);
    return vid;
  }
  function privacySignal() { return navigator.doNotTrack === "1" || w.doNotTrack === "1" || navigator.globalPrivacyControl === true; }
  function consented() {
    var c = store && store.getItem(CONSENT_KEY);
    if (c === "0") return false;
    if (c === "1") return true;
    if (cfg.consent === "required") return false;
    return !privacySignal();
  }
  function load() {
    if (!store) return memQueue;
    try { return JSON.parse(store.getItem(QUEUE_KEY) || "[]"); } catch (e) { return []; }
  }
  function save(q) {
    if (q.length > MAX_QUEUE) q = q.slice(q.length - MAX_QUEUE); // bounded: oldest go first
    if (store) { try { store.setItem(QUEUE_KEY, JSON.stringify(q)); } catch (e) { memQueue = q; } } else memQueue = q;
  }
  function schedule(ms) { if (!timer) timer = setTimeout(function () { timer = null; flush(); }, ms); }

  function track(name, props, itemId) {
    if (!consented()) return null;
    props = props || {};
    var ev = { id: uuid(), name: name, ts: Date.now(), props: props,
               item_id: itemId || props.item_id || undefined };
    if (ev.props.item_id) delete ev.props.item_id;
    ev.props.url = ev.props.url || w.location.href;
    if (d.referrer && !ev.props.referrer) ev.props.referrer = d.referrer;
    var q = load(); q.push(ev); save(q);
    if (q.length >= FLUSH_SIZE) flush(); else schedule(FLUSH_MS);
    return ev.id;
  }

  function body(batch) {
    return JSON.stringify({ site_key: KEY, visitor_id: visitorId(), sent_at: Date.now(), events: batch });
  }
  function settle(batch) { // drop what the server has answered for (accepted, duplicate or rejected)
    var ids = {}; batch.forEach(function (e) { ids[e.id] = 1; });
    save(load().filter(function (e) { return !ids[e.id]; }));
  }
  function flush(beacon) {
    if (!consented()) { save([]); return; }
    var q = load();
    if (!q.length || (inflight && !beacon)) return;
    var batch = q.slice(0, MAX_BATCH);
    if (beacon && navigator.sendBeacon) {
      // Beacon delivery is not confirmed: events stay queued and are re-sent next page; the UUIDs make that harmless.
      navigator.sendBeacon(ENDPOINT, new Blob([body(batch)], { type: "text/plain" }));
      return;
    }
    inflight = true;
    fetch(ENDPOINT, { method: "POST", body: body(batch), keepalive: true, credentials: "same-origin",
                      headers: { "Content-Type": "application/json", "X-LiveRec-Key": KEY } })
      .then(function (r) {
        inflight = false;
        if (r.ok || (r.status >= 400 && r.status < 500 && r.status !== 429 && r.status !== 408)) {
          settle(batch); backoff = 0;  // a 4xx batch will never succeed: drop it, don't loop
          if (r.ok) w.dispatchEvent(new CustomEvent("liverec:sent", { detail: { count: batch.length } }));
          if (load().length) schedule(0);
        } else { retry(r.headers.get("Retry-After")); }
      })
      .catch(function () { inflight = false; retry(); });
  }
  function retry(after) {
    backoff = Math.min(backoff ? backoff * 2 : 1000, 30000);
    var ms = after ? Math.max(+after * 1000, 500) : backoff;
    schedule(ms + Math.random() * 250);
  }

  function closest(el, sel) { return el && el.closest ? el.closest(sel) : null; }
  d.addEventListener("click", function (e) {
    var ev = closest(e.target, "[data-liverec-event]");
    if (ev) {
      track(ev.dataset.liverecEvent, { price: ev.dataset.liverecPrice }, ev.dataset.liverecItem || cfg.item);
      return;
    }
    var item = closest(e.target, "[data-liverec-item]");
    if (item) {
      var rec = closest(item, "[data-liverec-rec]");
      var props = rec ? { rec_id: rec.dataset.liverecRec, slot: rec.dataset.liverecSlot } : {};
      track(rec ? "recommendation_clicked" : "item_clicked", props, item.dataset.liverecItem);
      flush();
    }
  }, true);
  d.addEventListener("submit", function (e) {
    var form = closest(e.target, "form[data-liverec-search]");
    if (!form) return;
    var input = form.querySelector("input[type=search], input[name=q], input[type=text]");
    if (input && input.value.trim()) { track("searched", { query: input.value.trim().slice(0, 256) }); flush(); }
  }, true);
  w.addEventListener("pagehide", function () { flush(true); });
  w.addEventListener("online", function () { backoff = 0; flush(); });

  var api = {
    _loaded: true,
    track: function (name, props) { return track(name, props); },
    identify: function (userId) { return track("identified", { user_id: String(userId) }); },
    consent: function (yes) {
      if (store) store.setItem(CONSENT_KEY, yes ? "1" : "0");
      if (!yes) save([]);
    },
    flush: function () { flush(); },
    visitorId: visitorId,
    queued: function () { return load().length; }
  };
  w.liverec = api;
  visitorId();
  if (cfg.user && !(store && store.getItem("lr_uid") === cfg.user)) {
    api.identify(cfg.user);
    if (store) store.setItem("lr_uid", cfg.user);
  }
  track("page_viewed", { title: d.title });
  if (cfg.item) track("item_viewed", {}, cfg.item);
  if (load().length) schedule(0);
})(window, document);
