/* LiveRec tracker: autocapture, batching, offline queue, consent. No build step.
 * Drop in with {% liverec_tracker %} (one script tag). API: liverec.track(name, props),
 * liverec.identify(userId), liverec.consent(bool), liverec.flush().
 * Autocapture: page views; item views (data-item on the script tag); clicks on
 * [data-liverec-item]; [data-liverec-event="added_to_cart"] (etc.) buttons; submits of
 * form[data-liverec-search]. Do-Not-Track / Global Privacy Control mean no tracking
 * unless the visitor opts in with liverec.consent(true).
 */
(function (w, d, nav) {
  "use strict";
  if (w.liverec && w.liverec._loaded) return;
  var script = d.currentScript || d.querySelector("script[data-endpoint]");
  var cfg = script ? script.dataset : {};
  var ENDPOINT = cfg.endpoint || "/liverec/events/";
  var KEY = cfg.siteKey || "";
  var COOKIE = cfg.cookie || "lr_vid";
  var FLUSH_MS = +cfg.flushMs || 1000, FLUSH_SIZE = +cfg.flushSize || 20;
  // Bounded: a visitor offline for hours keeps its newest 500 events (oldest dropped first).
  var QUEUE_KEY = "lr_queue", CONSENT_KEY = "lr_consent", MAX_QUEUE = 500, MAX_BATCH = 100;
  var store = (function () { try { var s = w.localStorage; s.setItem("lr_t", "1"); s.removeItem("lr_t"); return s; } catch (e) { return null; } })();
  var memQueue = [], timer = null, backoff = 0, retryAt = 0, inflight = false, batchMax = MAX_BATCH;

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
    // The server issues the id in a signed cookie ("<id>:<signature>") and reads the visitor
    // from it; the tracker never makes one up (an id the server did not sign is replaced).
    var v = getCookie(COOKIE), i = v.lastIndexOf(":");
    return i > 0 ? v.slice(0, i) : "";
  }
  function privacySignal() { return nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.globalPrivacyControl === true; }
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
    if (q.length > MAX_QUEUE) q = q.slice(q.length - MAX_QUEUE);
    if (store) { try { store.setItem(QUEUE_KEY, JSON.stringify(q)); return; } catch (e) { /* quota: keep in memory */ } }
    memQueue = q;
  }
  function schedule(ms) { if (!timer) timer = setTimeout(function () { timer = null; flush(); }, ms); }
  function purge() { save([]); memQueue = []; clearTimeout(timer); timer = null; }

  function track(name, props, itemId, userId) {
    if (!consented()) return null;
    props = props || {};
    var ev = { id: uuid(), name: name, ts: Date.now(), props: props,
               item_id: itemId || props.item_id || undefined, user_id: userId || undefined };
    if (props.item_id) delete props.item_id;
    props.url = props.url || w.location.href;
    if (d.referrer && !props.referrer) props.referrer = d.referrer;
    var q = load(); q.push(ev); save(q);
    // A full batch goes at once, unless the server asked us to back off.
    if (q.length >= FLUSH_SIZE && Date.now() >= retryAt) flush(); else schedule(FLUSH_MS);
    return ev.id;
  }

  function body(batch) {
    // No visitor_id: the server takes it from the signed cookie the request carries.
    return JSON.stringify({ site_key: KEY, sent_at: Date.now(), events: batch });
  }
  function settle(batch) { // drop what the server has answered for (accepted, duplicate or rejected)
    var ids = {}; batch.forEach(function (e) { ids[e.id] = 1; });
    save(load().filter(function (e) { return !ids[e.id]; }));
  }
  function beacon(q) {
    // Delivery is not confirmed: events stay queued and go again from the next page; their
    // UUIDs make that harmless. Small batches keep each beacon under the 64 KB keepalive cap.
    for (var i = 0; i < q.length && i < MAX_QUEUE; i += FLUSH_SIZE) {
      if (!nav.sendBeacon(ENDPOINT, new Blob([body(q.slice(i, i + FLUSH_SIZE))], { type: "text/plain" }))) return;
    }
  }
  function flush(unloading) {
    if (!consented()) { purge(); return; }
    var q = load();
    if (!q.length) return;
    if (unloading && nav.sendBeacon) { beacon(q); return; }
    if (inflight) return;
    var batch = q.slice(0, batchMax);
    inflight = true;
    fetch(ENDPOINT, { method: "POST", body: body(batch), keepalive: true, credentials: "same-origin",
                      headers: { "Content-Type": "application/json", "X-LiveRec-Key": KEY } })
      .then(function (r) {
        inflight = false;
        if (r.status === 413 && batch.length > 1) {  // body too big: halve the batch and go again
          batchMax = Math.ceil(batch.length / 2); schedule(0); return;
        }
        if (r.ok || (r.status >= 400 && r.status < 500 && r.status !== 429 && r.status !== 408)) {
          settle(batch); backoff = 0; retryAt = 0; batchMax = MAX_BATCH;  // a 4xx batch would never succeed
          if (r.ok) w.dispatchEvent(new CustomEvent("liverec:sent", { detail: { count: batch.length } }));
          if (load().length) schedule(0);
        } else { retry(r.headers.get("Retry-After")); }
      }, function () { inflight = false; retry(); });
  }
  function retry(after) {  // exponential backoff with jitter, or the server's Retry-After
    backoff = Math.min(backoff ? backoff * 2 : 1000, 30000);
    var ms = (after ? Math.max(+after * 1000, 500) : backoff) + Math.random() * 250;
    retryAt = Date.now() + ms;
    clearTimeout(timer); timer = null; schedule(ms);
  }

  function closest(el, sel) { return el && el.closest ? el.closest(sel) : null; }
  d.addEventListener("click", function (e) {
    var ev = closest(e.target, "[data-liverec-event]");
    if (ev) {
      var props = ev.dataset.liverecPrice ? { price: ev.dataset.liverecPrice } : {};
      track(ev.dataset.liverecEvent, props, ev.dataset.liverecItem || cfg.item);
      return;
    }
    var item = closest(e.target, "[data-liverec-item]");
    if (item) {
      var rec = closest(item, "[data-liverec-rec]");
      var recProps = rec ? { rec_id: rec.dataset.liverecRec, slot: rec.dataset.liverecSlot } : {};
      track(rec ? "recommendation_clicked" : "item_clicked", recProps, item.dataset.liverecItem);
      flush();  // the click usually navigates away: start the request now (keepalive)
    }
  }, true);
  d.addEventListener("submit", function (e) {
    var form = closest(e.target, "form[data-liverec-search]");
    if (!form) return;
    var input = form.querySelector("input[type=search], input[name=q], input[type=text]");
    if (input && input.value.trim()) { track("searched", { query: input.value.trim().slice(0, 256) }); flush(); }
  }, true);
  w.addEventListener("pagehide", function () { flush(true); });
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") flush(true); });
  w.addEventListener("online", function () { backoff = 0; retryAt = 0; clearTimeout(timer); timer = null; flush(); });

  var api = {
    _loaded: true,
    track: function (name, props) { return track(name, props); },
    // Links this browser's anonymous visitor id to the site's user id (an "identified" event).
    identify: function (userId) {
      userId = String(userId);
      if (store) store.setItem("lr_uid", userId);
      return track("identified", {}, undefined, userId);
    },
    // consent(false): stop tracking and purge the queue; consent(true): opt in (overrides DNT/GPC).
    consent: function (yes) {
      if (store) store.setItem(CONSENT_KEY, yes ? "1" : "0");
      if (!yes) purge();
    },
    flush: function () { flush(); },
    visitorId: visitorId,
    queued: function () { return load().length; }
  };
  w.liverec = api;
  if (!consented()) purge();
  if (cfg.user && !(store && store.getItem("lr_uid") === cfg.user)) api.identify(cfg.user);
  track("page_viewed", { title: d.title });
  if (cfg.item) track("item_viewed", {}, cfg.item);
  if (load().length) schedule(0);
})(window, document, navigator);
