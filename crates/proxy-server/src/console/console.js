// The operator's console. It reads the System API with the token the operator gives (kept
// for this tab only) and changes nothing the API would not let a client change. Every
// value shown comes from clients or origins: it goes into the page as text, never as HTML.
"use strict";

(function () {
  const REFRESH_MS = 2000;
  const TOKEN_KEY = "proxy-console-token";
  const $ = (id) => document.getElementById(id);

  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  let timer = null;
  let detailStream = null;
  let whepPort = null;
  let peer = null;
  // Byte totals seen at the previous refresh, per stream, for the bitrates.
  let previous = new Map();

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function setStatus(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("error", !!isError);
  }

  class Unauthorized extends Error {}

  async function api(method, path) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const response = await fetch(path, { method, headers, cache: "no-store" });
    if (response.status === 401) throw new Unauthorized("the token was refused");
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      throw new Error((body && body.error) || method + " " + path + ": HTTP " + response.status);
    }
    return body;
  }

  function showLogin(message) {
    $("console").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    setStatus("token needed", false);
    stop();
  }

  function showConsole() {
    $("login").hidden = true;
    $("console").hidden = false;
    $("logout").hidden = !token;
  }

  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
  }

  function schedule() {
    stop();
    timer = setTimeout(refresh, REFRESH_MS);
  }

  function fmtBits(bitsPerSecond) {
    if (bitsPerSecond === null || !isFinite(bitsPerSecond)) return "–";
    const units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"];
    let v = bitsPerSecond, i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return v.toFixed(v < 10 && i > 0 ? 1 : 0) + " " + units[i];
  }

  function fmtBytes(n) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let v = n, i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return v.toFixed(i ? 1 : 0) + " " + units[i];
  }

  function fmtSeconds(s) {
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  // Each cell carries its column's name, which the phone layout shows beside the value.
  function labelCells(table) {
    const heads = [...table.tHead.rows[0].cells].map((th) => th.textContent);
    for (const row of table.tBodies[0].rows) {
      [...row.cells].forEach((cell, i) => { cell.dataset.label = heads[i] || ""; });
    }
  }

  // The default vhost is in every key; operators know streams as app/name.
  function shortName(stream) {
    return stream.startsWith("__defaultVhost__/") ? stream.slice("__defaultVhost__/".length) : stream;
  }

  function card(label, value, small) {
    return el("div", { class: "card" },
      el("div", { class: "label" }, label),
      el("div", { class: small ? "value small" : "value" }, value));
  }

  function renderProxy(p) {
    whepPort = p.whep_port;
    const refusals = Object.entries(p.refusals || {}).filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1]).map(([reason, n]) => reason + ": " + n).join(", ");
    const reloads = p.reloads || {};
    const cards = [
      card("Connections", p.connections + " / " + p.max_connections),
      card("Sessions", p.sessions),
      card("Balancer", p.balancer + (p.strategy ? " · " + p.strategy : "")),
      card("Refusals", refusals || "none", true),
      card("Reloads", (reloads.applied || 0) + " applied, " + (reloads.failed || 0) + " failed", true),
    ];
    if (p.edge) {
      const up = p.edge.upstreams || {};
      const pulls = (up.rtmp || 0) + (up["http-ts"] || 0);
      cards.push(card("Edge fan-out",
        p.edge.viewers + " viewers / " + pulls + " upstream" + (pulls === 1 ? "" : "s") +
        " (×" + Number(p.edge.fanout_ratio || 0).toFixed(1) + ")" +
        (p.edge.hls_viewers ? " · " + p.edge.hls_viewers + " HLS downloading" : ""), true));
    }
    $("proxy").replaceChildren(...cards);
  }

  function stateBadge(o) {
    const inner = el("div", {}, el("span", { class: "badge " + o.state, "data-state": o.state }, o.state));
    if (o.state === "down" && o.down) {
      inner.append(el("span", { class: "reason" }, o.down));
    } else if (o.state === "down" && !o.alive) {
      inner.append(el("span", { class: "reason" }, "no heartbeat for " + fmtSeconds(Math.round(o.since_heartbeat_ms / 1000))));
    }
    return el("td", {}, inner);
  }

  function renderOrigins(origins) {
    const rows = origins.map((o) => {
      const load = o.load && o.load.cpu_percent !== undefined && o.load.cpu_percent !== null
        ? o.load.cpu_percent + "% cpu" : "–";
      const capacity = [
        o.max_streams ? o.max_streams + " streams" : null,
        o.max_connections ? o.max_connections + " conns" : null,
      ].filter(Boolean).join(", ") || "unlimited";
      const u = o.utilisation;
      const pct = u === null || u === undefined ? null : Math.round(u * 100);
      const bar = pct === null ? el("span", { class: "muted" }, "–") : el("span", {},
        el("span", { class: pct >= 90 ? "bar hot" : "bar" },
          el("span", { style: "width:" + Math.min(100, pct) + "%" })), " " + pct + "%");
      const draining = o.draining;
      const action = el("button", {
        class: draining ? "secondary" : "",
        "data-action": draining ? "undrain" : "drain",
        "data-origin": o.id,
        onclick: () => setDraining(o.id, !draining),
      }, draining ? "Undrain" : "Drain");
      return el("tr", { "data-origin": o.id },
        el("td", {}, el("div", {}, el("strong", {}, o.id), el("div", { class: "muted" }, o.source + " · weight " + o.weight))),
        stateBadge(o),
        el("td", { class: "num" }, load),
        el("td", { class: "num" }, o.streams),
        el("td", { class: "num" }, o.connections + " (" + o.sessions + " here)"),
        el("td", {}, capacity),
        el("td", {}, bar),
        el("td", {}, action));
    });
    if (!rows.length) {
      rows.push(el("tr", {}, el("td", { colspan: "8", class: "muted" }, "No origin yet: register one, or list one in the configuration file.")));
    }
    $("origins").tBodies[0].replaceChildren(...rows);
    labelCells($("origins"));
  }

  function clientsSummary(sessions) {
    const counts = new Map();
    for (const c of sessions.clients || []) {
      const k = c.protocol + " " + c.role;
      counts.set(k, (counts.get(k) || 0) + 1);
    }
    if (!counts.size) return "none here";
    return [...counts.entries()].map(([k, n]) => k + " ×" + n).join(", ");
  }

  function renderStreams(streams, now) {
    const seen = new Map();
    const rows = streams.map((s) => {
      const here = s.sessions || {};
      const totals = { t: now, up: here.bytes_to_origin || 0, down: here.bytes_to_client || 0 };
      seen.set(s.stream, totals);
      const before = previous.get(s.stream);
      let rateIn = null, rateOut = null;
      if (before && now > before.t) {
        const secs = (now - before.t) / 1000;
        rateIn = Math.max(0, totals.up - before.up) * 8 / secs;
        rateOut = Math.max(0, totals.down - before.down) * 8 / secs;
      }
      const origin = s.origin || "–";
      const originState = s.origin_status && s.origin_status.known
        ? (s.origin_status.alive ? (s.origin_status.draining ? " (draining)" : "") : " (down)") : "";
      return el("tr", { "data-stream": s.stream },
        el("td", { class: "name" }, shortName(s.stream)),
        el("td", {}, origin + originState),
        el("td", {}, clientsSummary(here)),
        el("td", { class: "num" }, fmtBits(rateIn)),
        el("td", { class: "num" }, fmtBits(rateOut)),
        el("td", {}, el("button", { class: "secondary", "data-action": "detail", onclick: () => openDetail(s.stream) }, "Detail")));
    });
    previous = seen;
    if (!rows.length) {
      rows.push(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No stream.")));
    }
    $("streams").tBodies[0].replaceChildren(...rows);
    labelCells($("streams"));
    if (detailStream) {
      const s = streams.find((x) => x.stream === detailStream);
      renderDetail(s);
    }
  }

  function renderDetail(s) {
    const clients = (s && s.sessions && s.sessions.clients) || [];
    const rows = clients.map((c) => el("tr", {},
      el("td", {}, c.peer), el("td", {}, c.protocol), el("td", {}, c.role), el("td", {}, c.origin),
      el("td", { class: "num" }, fmtSeconds(c.seconds)),
      el("td", { class: "num" }, fmtBytes(c.bytes_to_origin)),
      el("td", { class: "num" }, fmtBytes(c.bytes_to_client))));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "7", class: "muted" }, s ? "No client on this proxy." : "The stream is gone.")));
    $("detail-clients").tBodies[0].replaceChildren(...rows);
    labelCells($("detail-clients"));
  }

  function openDetail(stream) {
    if (detailStream !== stream) stopPreview();
    detailStream = stream;
    $("detail-name").textContent = shortName(stream);
    $("detail").hidden = false;
    refresh();
  }

  function closeDetail() {
    stopPreview();
    detailStream = null;
    $("detail").hidden = true;
  }

  async function setDraining(id, draining) {
    try {
      await api(draining ? "POST" : "DELETE", "/api/v1/servers/" + encodeURIComponent(id) + "/drain");
      setStatus((draining ? "drained " : "undrained ") + id, false);
    } catch (e) {
      if (e instanceof Unauthorized) return showLogin(e.message);
      setStatus("cannot change " + id + ": " + e.message, true);
    }
    refresh();
  }

  // WHEP (RFC 9725) with the browser's own RTCPeerConnection: offer, POST it to the
  // proxy's WHIP/WHEP listener, apply the answer.
  async function startPreview() {
    if (!detailStream || !whepPort) {
      $("preview-status").textContent = "no WHEP listener on this proxy";
      return;
    }
    stopPreview();
    const parts = detailStream.split("/");
    const name = parts.pop();
    const app = parts.slice(1).join("/") || parts[0];
    const url = location.protocol + "//" + location.hostname + ":" + whepPort +
      "/rtc/v1/whep/?app=" + encodeURIComponent(app) + "&stream=" + encodeURIComponent(name);
    $("preview-status").textContent = "connecting…";
    try {
      peer = new RTCPeerConnection();
      peer.addTransceiver("video", { direction: "recvonly" });
      peer.addTransceiver("audio", { direction: "recvonly" });
      const video = $("preview");
      peer.ontrack = (event) => {
        if (video.srcObject !== event.streams[0]) video.srcObject = event.streams[0];
      };
      peer.onconnectionstatechange = () => {
        if (peer) $("preview-status").textContent = peer.connectionState;
      };
      await peer.setLocalDescription(await peer.createOffer());
      const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: peer.localDescription.sdp });
      const answer = await response.text();
      if (!response.ok) throw new Error("WHEP answered " + response.status + ": " + answer.slice(0, 200));
      await peer.setRemoteDescription({ type: "answer", sdp: answer });
      video.hidden = false;
      $("preview-start").hidden = true;
      $("preview-stop").hidden = false;
    } catch (e) {
      stopPreview();
      $("preview-status").textContent = "preview failed: " + e.message;
    }
  }

  function stopPreview() {
    if (peer) peer.close();
    peer = null;
    const video = $("preview");
    video.srcObject = null;
    video.hidden = true;
    $("preview-start").hidden = false;
    $("preview-stop").hidden = true;
  }

  async function refresh() {
    stop();
    try {
      const [proxy, servers, streams] = await Promise.all([
        api("GET", "/api/v1/proxy"),
        api("GET", "/api/v1/servers"),
        api("GET", "/api/v1/streams"),
      ]);
      showConsole();
      renderProxy(proxy.data);
      renderOrigins(servers.data);
      renderStreams(streams.data, Date.now());
      setStatus("updated " + new Date().toLocaleTimeString() +
        (streams.balancer_error ? " · balancer: " + streams.balancer_error : ""), !!streams.balancer_error);
      document.body.dataset.loaded = "1";
    } catch (e) {
      if (e instanceof Unauthorized) {
        showLogin(token ? e.message : "");
        return;
      }
      setStatus("cannot reach the API: " + e.message, true);
    }
    schedule();
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    refresh();
  });
  $("logout").addEventListener("click", () => {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    closeDetail();
    showLogin("");
  });
  $("detail-close").addEventListener("click", closeDetail);
  $("preview-start").addEventListener("click", startPreview);
  $("preview-stop").addEventListener("click", stopPreview);
  refresh();
})();
