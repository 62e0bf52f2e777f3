// The demo page: plain JavaScript against the gateway's own HTTP API, no build, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { lastAnswer: null, feedIds: [], latencies: [], apiKey: localStorage.getItem("srec-key") || "" };

function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
  return Date.now().toString(16) + Math.random().toString(16).slice(2);
}

function user() { return $("user").value.trim() || "demo"; }

function setUser(id) {
  $("user").value = id;
  localStorage.setItem("srec-user", id);
  $("results").innerHTML = "";
  $("answer-meta").textContent = "";
  state.feedIds = [];
  refreshFeed();
}

async function call(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.apiKey) headers["X-API-Key"] = state.apiKey;
  const started = performance.now();
  const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const ms = performance.now() - started;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const why = data.field ? `${data.field}: ${data.reason}` : (data.detail || response.statusText);
    throw new Error(`${method} ${path}: ${response.status} ${why}`);
  }
  return { data, ms };
}

function fmt(x, digits = 1) { return Number(x).toFixed(digits); }

function timings(reply, ms) {
  const t = reply.timings;
  return `${reply.strategy} · queue ${fmt(t.queue_ms)} · embed ${fmt(t.embed_ms)} · search ${fmt(t.search_ms, 2)}` +
    ` · rank ${fmt(t.rank_ms, 2)} · worker ${fmt(t.total_ms)} ms · round trip ${fmt(ms)} ms`;
}

function blend(reply) {
  const b = reply.explanation;
  if (!b) return "";
  return ` · blend α ${fmt(b.alpha, 2)} γ ${fmt(b.gamma, 2)} β ${fmt(b.beta, 2)} prior ${fmt(b.prior_weight, 2)}` +
    ` (learned from ${b.learned_pairs} pairs, explore ${fmt(100 * b.explore_share, 0)}%)`;
}

function render(list, reply, previous) {
  list.innerHTML = "";
  for (const item of reply.items) {
    const li = document.createElement("li");
    li.dataset.itemId = item.item_id;
    li.dataset.requestId = reply.request_id;
    li.dataset.explored = String(item.explored);
    if (previous && !previous.includes(item.item_id)) li.classList.add("moved");
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = item.title || item.item_id;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = fmt(item.score, 3);
    li.append(title, score);
    if (item.explored) {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.title = "shown in an exploration slot, not for its score";
      tag.textContent = `explored p=${fmt(item.propensity, 2)}`;
      li.append(tag);
    }
    list.append(li);
  }
}

function record(ms) {
  state.latencies.push(ms);
  if (state.latencies.length > 60) state.latencies.shift();
  drawChart();
}

function drawChart() {
  const canvas = $("latency");
  const g = canvas.getContext("2d");
  const values = state.latencies;
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (!values.length) return;
  const top = Math.max(20, ...values) * 1.15;
  const w = canvas.width / 60;
  g.fillStyle = "#3a6fd8";
  values.forEach((v, i) => {
    const h = (v / top) * (canvas.height - 14);
    g.fillRect(i * w + 1, canvas.height - h, w - 2, h);
  });
  g.fillStyle = "#5c6675";
  g.font = "11px sans-serif";
  g.fillText(`${fmt(top, 0)} ms`, 2, 10);
  const sorted = [...values].sort((a, b) => a - b);
  const p50 = sorted[Math.floor(sorted.length / 2)];
  $("latency-meta").textContent = `round trip of the last ${values.length} asks (browser → gateway → Kafka → worker → back): p50 ${fmt(p50)} ms`;
}

async function ask(event) {
  if (event) event.preventDefault();
  const text = $("q").value.trim();
  try {
    const { data, ms } = await call("POST", "/recommendations", { user_id: user(), text, k: 10 });
    state.lastAnswer = data;
    render($("results"), data, null);
    $("answer-meta").textContent = timings(data, ms) + blend(data);
    $("results").dataset.requestId = data.request_id;
    record(ms);
    $("status").textContent = "";
  } catch (err) {
    $("status").textContent = err.message;
  }
}

async function refreshFeed(minEvents) {
  // after a click, ask until the worker has applied it (the reply says how many events)
  for (let attempt = 0; attempt < 25; attempt++) {
    try {
      const { data, ms } = await call("GET", `/users/${encodeURIComponent(user())}/feed?k=10`);
      record(ms);
      if (minEvents === undefined || data.user_events >= minEvents || attempt === 24) {
        render($("feed"), data, state.feedIds.length ? state.feedIds : null);
        state.feedIds = data.items.map((i) => i.item_id);
        const meta = $("feed-meta");
        meta.dataset.userEvents = String(data.user_events);
        meta.dataset.strategy = data.strategy;
        meta.textContent = `${data.user_events} events applied · ${timings(data, ms)}`;
        return;
      }
    } catch (err) {
      $("status").textContent = err.message;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

async function click(event) {
  const li = event.target.closest("li[data-item-id]");
  if (!li) return;
  li.classList.add("clicked");
  const events = Number($("feed-meta").dataset.userEvents || 0);
  try {
    await call("POST", "/feedback", {
      user_id: user(), item_id: li.dataset.itemId, event: "click",
      request_id: li.dataset.requestId, event_id: newId(),
    });
    await refreshFeed(events + 1);
  } catch (err) {
    $("status").textContent = err.message;
  }
}

$("search").addEventListener("submit", ask);
$("results").addEventListener("click", click);
$("feed").addEventListener("click", click);
$("refresh").addEventListener("click", () => refreshFeed());
$("new-user").addEventListener("click", () => setUser("demo-" + newId().slice(0, 8)));
$("user").addEventListener("change", () => setUser(user()));
setUser(new URLSearchParams(location.search).get("user") || localStorage.getItem("srec-user") || "demo-" + newId().slice(0, 8));
