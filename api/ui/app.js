// DoubleDutch status page: reads the same JSON the API serves
// (GET /v1/cluster, then GET /v1/locks on the leader or GET
// /v1/locks?stale=true on a follower) from this node every 1.5 s.
// The API key lives in sessionStorage only: this tab, until it closes.
// Session tokens are never requested and never shown.
"use strict";
(function () {
  const KEY = "doubledutch.apiKey";
  const $ = (id) => document.getElementById(id);
  let locks = [];      // [{view, deadline}] from the last listing
  let timer = null;

  function key() { return sessionStorage.getItem(KEY); }

  async function get(path) {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + key() }, cache: "no-store", redirect: "manual" });
    if (r.status === 401) { sessionStorage.removeItem(KEY); showLogin("wrong API key"); throw new Error("unauthorized"); }
    if (!r.ok) { throw new Error(path + ": HTTP " + r.status); }
    return r.json();
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function badge(td, text, cls) {
    td.textContent = "";
    const s = document.createElement("span");
    s.className = "badge " + cls;
    s.textContent = text;
    td.appendChild(s);
  }

  function seconds(s) {
    if (s === undefined || s === null) return "";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 120) return s.toFixed(1) + " s";
    if (s < 7200) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    return (s / 3600).toFixed(1) + " h";
  }

  function health(n, selfLeads) {
    if (n.role === "leader") return ["ok", "ok"];
    if (!n.known) return selfLeads ? ["no answer", "bad"] : ["unknown", "warn"];
    if (n.last_contact > 3 || n.entries_behind > 1000) return ["lagging", "warn"];
    return ["ok", "ok"];
  }

  function renderNodes(c) {
    const body = $("nodes").tBodies[0];
    body.textContent = "";
    const selfLeads = c.leader && c.leader.is_self;
    for (const n of c.nodes || []) {
      const tr = document.createElement("tr");
      const name = cell(tr, n.id + (n.id === c.node_id ? " (this node)" : ""), "node" + (n.role === "leader" ? " leader" : ""));
      if (n.api_url) name.title = n.api_url;
      cell(tr, n.role);
      const [h, cls] = health(n, selfLeads);
      badge(cell(tr, ""), h, cls);
      cell(tr, n.known ? seconds(n.last_contact) : "", "num");
      cell(tr, n.known ? String(n.entries_behind) : "", "num");
      cell(tr, n.raft_address, "wide");
      body.appendChild(tr);
    }
    const f = $("follower");
    if (!selfLeads && c.leader && c.leader.api_url) {
      f.textContent = "";
      f.append("This node is a follower: locks are its local copy and waiters are counted only on the leader. ");
      const a = document.createElement("a");
      a.href = c.leader.api_url + "/ui/";
      a.textContent = "Open the leader's page (" + c.leader.id + ")";
      f.appendChild(a);
      f.hidden = false;
    } else if (!c.leader || !c.leader.id) {
      f.textContent = "No leader is known to this node.";
      f.hidden = false;
    } else {
      f.hidden = true;
    }
  }

  function renderChanges(c) {
    const ol = $("changes");
    ol.textContent = "";
    const list = (c.leader_changes || []).slice().reverse();
    for (const ch of list) {
      const li = document.createElement("li");
      const when = new Date(ch.at).toLocaleTimeString();
      li.textContent = when + ": " + (ch.leader_id ? ch.leader_id + " leads (term " + ch.term + ")" : "leader lost (term " + ch.term + ")");
      ol.appendChild(li);
    }
    if (!list.length) {
      const li = document.createElement("li");
      li.textContent = "none since this node started";
      ol.appendChild(li);
    }
  }

  function renderLocks(list, fetchedAt) {
    locks = list.locks.map((l) => ({ view: l, deadline: fetchedAt + l.expires_in * 1000 }));
    const body = $("locks").tBodies[0];
    body.textContent = "";
    for (const l of locks) {
      const tr = document.createElement("tr");
      cell(tr, l.view.name, "name");
      cell(tr, l.view.owner || "");
      cell(tr, String(l.view.fencing_token), "num fence");
      l.cell = cell(tr, "", "num remaining");
      cell(tr, String(l.view.waiters || 0), "num");
      body.appendChild(tr);
    }
    $("more").hidden = !list.next;
    $("more").textContent = list.next ? "Showing the first " + locks.length + " locks by name." : "";
    tick();
  }

  function tick() {
    const now = Date.now();
    for (const l of locks) {
      if (l.cell) l.cell.textContent = seconds(Math.max(0, (l.deadline - now) / 1000));
    }
  }

  async function refresh() {
    try {
      const c = await get("/v1/cluster");
      // The leader answers a linearizable listing itself; a follower
      // would redirect it to another origin, so it shows its local copy.
      const leads = c.leader && c.leader.is_self;
      const fetchedAt = Date.now();
      const list = await get("/v1/locks?limit=500" + (leads ? "" : "&stale=true"));
      $("self").textContent = "node " + c.node_id + " · " + c.raft_state + " · term " + c.term;
      $("lockcount").textContent = "(" + c.lock_count + " held)";
      renderNodes(c);
      renderChanges(c);
      renderLocks(list, fetchedAt);
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      $("error").hidden = true;
      document.body.dataset.loaded = "true";
    } catch (e) {
      if (!key()) return;
      $("error").textContent = "Could not refresh: " + e.message;
      $("error").hidden = false;
    }
  }

  function showLogin(msg) {
    clearInterval(timer);
    timer = null;
    $("status").hidden = true;
    $("login").hidden = false;
    if (msg) $("updated").textContent = msg;
  }

  function showStatus() {
    $("login").hidden = true;
    $("status").hidden = false;
    refresh();
    if (!timer) timer = setInterval(refresh, 1500);
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("key").value);
    $("key").value = "";
    showStatus();
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); showLogin("key forgotten"); });
  setInterval(tick, 250);

  // A key in the fragment (#key=...) is taken once and removed from the
  // address bar: handy for scripted checks, never sent to the server.
  const m = /(?:^|&)key=([^&]+)/.exec(location.hash.slice(1));
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  if (key()) showStatus(); else showLogin();
})();
