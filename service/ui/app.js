/* The banditroute dashboard. Every figure is a field of a /ui/api JSON answer: each shown number carries the
   answer's URL (data-api on its section) and its path in it (data-k), so what is shown can be checked against
   the JSON. The key lives in sessionStorage only and is sent as Authorization: Bearer to this service. */
"use strict";
(() => {
  const KEY = "banditroute.key";
  const REFRESH_MS = 3000;
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  let timer = null, me = null, busy = false;

  class HttpError extends Error { constructor(status, message) { super(message); this.status = status; } }

  async function call(path, opts = {}) {
    const headers = Object.assign({Accept: "application/json"}, opts.headers || {});
    const key = sessionStorage.getItem(KEY);
    if (key) { headers.Authorization = "Bearer " + key; }
    const r = await fetch(path, Object.assign({}, opts, {headers, credentials: "omit", cache: "no-store"}));
    const body = await r.json().catch(() => null);
    if (!r.ok) {
      const msg = body && body.error ? body.error.message : (body && body.detail ? JSON.stringify(body.detail) : r.statusText);
      throw new HttpError(r.status, msg);
    }
    return body;
  }

  function fmt(v) {
    if (v === null || v === undefined) { return "–"; }
    if (typeof v === "boolean") { return v ? "yes" : "no"; }
    if (typeof v !== "number") { return String(v); }
    if (Number.isInteger(v)) { return String(v); }
    return String(Number(v.toPrecision(4)));
  }
  const get = (root, path) => path.reduce((o, p) => (o === null || o === undefined ? undefined : o[p]), root);
  /* a number from the answer, tagged with its path; live: a figure that moves with the clock (rates, ages) */
  function n(root, path, opts = {}) {
    const v = get(root, path);
    const shown = opts.pct && typeof v === "number" ? String(Number((v * 100).toPrecision(4))) + "%" : fmt(v);
    return `<span data-k="${esc(JSON.stringify(path))}"${opts.pct ? ' data-pct="1"' : ""}${opts.live ? ' data-live="1"' : ""}>${esc(shown)}</span>`;
  }
  function ci(root, path) {
    const c = get(root, path.concat("ci95"));
    if (!c) { return ""; }
    return ` <span class="ci">[${n(root, path.concat("ci95", 0))}, ${n(root, path.concat("ci95", 1))}]</span>`;
  }
  const mean = (root, path) => n(root, path.concat("mean")) + ci(root, path);
  const ago = (t) => { const s = Math.max(0, Date.now() / 1000 - t); return s < 90 ? `${s.toFixed(0)} s ago` : s < 5400 ? `${(s / 60).toFixed(0)} min ago` : `${(s / 3600).toFixed(1)} h ago`; };
  const clock = (t) => new Date(t * 1000).toLocaleTimeString();
  const tile = (label, html) => `<div class="tile"><div class="label">${esc(label)}</div><div class="value">${html}</div></div>`;
  const table = (head, rows) => `<table><thead><tr>${head.map((h) => `<th${h.endsWith("#") ? ' class="num"' : ""}>${esc(h.replace(/#$/, ""))}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
  const td = (html, num) => `<td${num ? ' class="num"' : ""}>${html}</td>`;
  const section = (api, html) => `<section data-api="${esc(api)}">${html}</section>`;
  const enc = encodeURIComponent;

  function flash(msg, kind) {
    $("flash").innerHTML = msg ? `<div class="msg ${kind || ""}">${esc(msg)}</div>` : "";
  }

  // ---- views -------------------------------------------------------------------------------------------
  async function overview() {
    const api = "/ui/api/overview";
    const o = await call(api);
    const pol = o.policies.map((p, i) => "<tr>" + [
      td(`<a href="#/policy/${enc(p.id)}">${esc(p.id)}</a>`), td(esc(p.policy)), td(n(o, ["policies", i, "models"]), 1),
      td(n(o, ["policies", i, "version"]), 1), td(n(o, ["policies", i, "generation"]), 1),
      td(n(o, ["policies", i, "requests_per_s"], {live: 1}), 1), td(n(o, ["policies", i, "feedback_per_s"], {live: 1}), 1),
      td(n(o, ["policies", i, "ops", "lag_events"]), 1), td(n(o, ["policies", i, "ops", "lag_seconds"], {live: 1}), 1),
      td(n(o, ["policies", i, "ops", "dead"]), 1), td(n(o, ["policies", i, "ops", "snapshot_age"], {live: 1}), 1),
      td(n(o, ["policies", i, "last_hour", "decisions"]), 1), td(n(o, ["policies", i, "last_hour", "feedback"]), 1),
      td(mean(o, ["policies", i, "last_hour", "reward"]), 1), td(mean(o, ["policies", i, "last_hour", "cost_usd"]), 1),
    ].join("") + "</tr>");
    const exps = o.experiments.map((e) => "<tr>" + [
      td(`<a href="#/experiment/${enc(e.id)}">${esc(e.id)}</a>`), td(`<span class="status-${esc(e.status)}">${esc(e.status)}</span>`),
      td(esc(e.control)), td(esc(e.arms.join(", "))), td(esc(ago(e.created_at))),
    ].join("") + "</tr>");
    return section(api, `<h1>Overview</h1><div class="tiles">` +
      tile("Policies", String(o.policies.length)) + tile("Experiments", String(o.experiments.length)) +
      tile("Requests / s (last min)", n(o, ["totals", "requests_per_s"], {live: 1})) +
      tile("Feedback / s (last min)", n(o, ["totals", "feedback_per_s"], {live: 1})) +
      tile("Dead letters", n(o, ["totals", "dead_letters"])) + `</div>` +
      `<h2>Policies</h2><div class="card">${o.policies.length ? table(["policy", "learner", "models#", "version#", "generation#", "requests/s#", "feedback/s#", "lag (events)#", "lag (s)#", "dead letters#", "snapshot age (s)#", "decisions (1 h)#", "feedback (1 h)#", "mean reward (1 h) [95% CI]#", "mean cost USD (1 h) [95% CI]#"], pol) : '<p class="muted">No policies yet.</p>'}</div>` +
      `<h2>Experiments</h2><div class="card">${o.experiments.length ? table(["experiment", "status", "control", "arms", "created"], exps) : '<p class="muted">No experiments.</p>'}</div>`);
  }

  async function policy(pid) {
    const api = `/ui/api/policies/${enc(pid)}`;
    const p = await call(api);
    const w = p.window, s = w.series;
    const lam = p.lam.paced
      ? tile("Pacer lambda (now)", n(p, ["lam", "value"])) + tile("Pacer target (USD / request)", n(p, ["lam", "target_cost_usd"]))
      : tile("Lambda (unpaced: per request)", n(p, ["window", "mean_lam"]));
    const rows = w.models.map((m, i) => "<tr>" + [
      td(esc(m.model)), td(n(p, ["window", "models", i, "decisions"]), 1), td(n(p, ["window", "models", i, "share"], {pct: 1}), 1),
      td(n(p, ["window", "models", i, "feedback"]), 1), td(mean(p, ["window", "models", i, "reward"]), 1),
      td(mean(p, ["window", "models", i, "cost_usd"]), 1),
    ].join("") + "</tr>");
    const models = Object.keys(s.share);
    const charts = Charts.line({title: "Share of decisions by model", yLabel: "share of decisions", t: s.t, yMin: 0, yMax: 1,
      series: models.map((m) => ({name: m, values: s.share[m]}))}) +
      Charts.line({title: "Mean reward over time", yLabel: "mean reward (score 0–1)", t: s.t, series: [{name: "mean reward", values: s.reward}]}) +
      Charts.line({title: "Mean cost over time", yLabel: "mean cost (USD / request)", t: s.t, series: [{name: "mean cost", values: s.cost_usd}]});
    return section(api, `<h1>Policy ${esc(pid)} <span class="muted">${esc(p.info.policy)}</span></h1><div class="tiles">` +
      tile("Version", n(p, ["info", "version"])) + tile("Generation", n(p, ["info", "generation"])) +
      tile("Updates applied", n(p, ["info", "n_updates"])) +
      tile("Snapshot age (s)", n(p, ["ops", "snapshot_age"], {live: 1})) +
      tile("Learner lag (events)", n(p, ["ops", "lag_events"])) + tile("Dead letters", n(p, ["info", "dead_letters"])) +
      tile("Exploration share (1 h)", n(p, ["window", "exploration_share"], {pct: 1})) + lam + `</div>` +
      `<h2>Models over the last hour (${n(p, ["window", "decisions"])} decisions)</h2><div class="card">` +
      table(["model", "decisions#", "share#", "feedback#", "mean reward [95% CI]#", "mean cost USD [95% CI]#"], rows) + `</div>` +
      `<div class="card charts">${charts}</div>` +
      `<p><a href="#/decisions/${enc(pid)}">Recent decisions of ${esc(pid)}</a></p>`);
  }

  async function experiment(eid) {
    const api = `/ui/api/experiments/${enc(eid)}`;
    const x = await call(api);
    const r = x.report, s = x.series;
    const rows = r.arms.map((a, i) => {
      const P = ["report", "arms", i];
      const diff = (k) => a[k] ? n(x, P.concat(k, "mean")) + ` <span class="ci">[${n(x, P.concat(k, "ci95", 0))}, ${n(x, P.concat(k, "ci95", 1))}]</span>` : (a.name === r.control ? '<span class="muted">control</span>' : "–");
      return "<tr>" + [
        td(esc(a.name)), td(`<a href="#/policy/${enc(a.policy)}">${esc(a.policy)}</a>`), td(n(x, P.concat("weight")), 1),
        td(a.shadow ? "shadow" : "serving"), td(n(x, P.concat("decisions")), 1), td(n(x, P.concat("feedback")), 1),
        td(mean(x, P.concat("score")), 1), td(mean(x, P.concat("cost_usd")), 1), td(diff("score_minus_control"), 1), td(diff("cost_minus_control"), 1),
      ].join("") + "</tr>";
    });
    const names = Object.keys(s.arms);
    const pick = (name, f) => s.arms[name].map(f);
    const charts = Charts.line({title: "Mean score by arm (cumulative)", yLabel: "mean score (0–1)", t: s.t,
        series: names.map((a) => ({name: a, values: pick(a, (q) => q.score.mean), lo: pick(a, (q) => q.score.ci95 ? q.score.ci95[0] : null), hi: pick(a, (q) => q.score.ci95 ? q.score.ci95[1] : null)}))}) +
      Charts.line({title: `Score difference to control (${r.control})`, yLabel: "score − control score", t: s.t, zero: true,
        series: names.filter((a) => a !== r.control).map((a) => ({name: `${a} − ${r.control}`, values: pick(a, (q) => q.score_minus_control ? q.score_minus_control.mean : null), lo: pick(a, (q) => q.score_minus_control ? q.score_minus_control.ci95[0] : null), hi: pick(a, (q) => q.score_minus_control ? q.score_minus_control.ci95[1] : null)}))}) +
      Charts.line({title: "Decisions by arm (cumulative)", yLabel: "decisions", t: s.t, yMin: 0, series: names.map((a) => ({name: a, values: pick(a, (q) => q.decisions)}))});
    const canStop = r.status === "running";
    return section(api, `<h1>Experiment ${esc(eid)} <span id="exp-status" class="status-${esc(r.status)}">${esc(r.status)}</span></h1>` +
      `<p>Control arm: <b>${esc(r.control)}</b>. ${canStop ? `<button id="stop" class="danger" type="button" data-eid="${esc(eid)}">Stop experiment</button> <span class="hint">needs a key with the admin scope; the data and this report stay</span>` : ""}</p>` +
      `<div class="card">${table(["arm", "policy", "weight#", "role", "decisions#", "feedback#", "mean score [95% CI]#", "mean cost USD [95% CI]#", "score − control [95% CI]#", "cost − control USD [95% CI]#"], rows)}</div>` +
      `<div class="card charts">${charts}</div>`);
  }

  async function decisions(pid) {
    const api = `/ui/api/decisions?limit=50${pid ? "&policy=" + enc(pid) : ""}`;
    const ds = await call(api);
    const rows = ds.map((d, i) => "<tr>" + [
      td(esc(clock(d.time))), td(`<a class="mono" href="#/decision/${enc(d.decision_id)}">${esc(d.decision_id.slice(-12))}</a>`),
      td(esc(d.policy) + (d.experiment ? ` <span class="muted">${esc(d.experiment)}/${esc(d.arm)}${d.shadow ? " shadow" : ""}</span>` : "")),
      td(`<span class="mono">${esc(d.context_digest.slice(0, 12))}</span>`),
      td(`<span class="pmf">${Object.keys(d.pmf).map((m) => `<span>${esc(m)}: ${n(ds, [i, "pmf", m])}</span>`).join("")}</span>`),
      td(`<b>${esc(d.model)}</b>`), td(n(ds, [i, "propensity"]), 1),
      td(Object.keys(d.feedback).length ? Object.keys(d.feedback).map((src) => `${esc(src)}: ${n(ds, [i, "feedback", src])}`).join(", ") : '<span class="muted">none</span>'),
      td(n(ds, [i, "cost_observed_usd"]), 1), td(n(ds, [i, "latency_ms"]), 1),
    ].join("") + "</tr>");
    return section(api, `<h1>Recent decisions${pid ? " of " + esc(pid) : ""}</h1><div class="card">` +
      (ds.length ? table(["time", "decision", "policy", "query digest", "pmf", "chosen", "propensity#", "feedback", "cost USD#", "latency ms#"], rows) : '<p class="muted">No decisions yet.</p>') + "</div>");
  }

  async function decision(did) {
    const api = `/ui/api/decisions/${enc(did)}`;
    const d = await call(api);
    const kv = (k, html) => `<tr><th>${esc(k)}</th><td>${html}</td></tr>`;
    return section(api, `<h1>Decision <span class="mono">${esc(did)}</span></h1><div class="card"><table>` +
      kv("time", esc(new Date(d.time * 1000).toLocaleString())) + kv("policy", `<a href="#/policy/${enc(d.policy)}">${esc(d.policy)}</a>`) +
      kv("policy version / generation", n(d, ["policy_version"]) + " / " + n(d, ["generation"])) +
      kv("experiment / arm", d.experiment ? `${esc(d.experiment)} / ${esc(d.arm)}${d.shadow ? " (shadow)" : ""}` : "–") +
      kv("query digest (sha256 of the context)", `<span class="mono">${esc(d.context_digest)}</span>`) +
      kv("chosen model", `<b>${esc(d.model)}</b>`) + kv("propensity", n(d, ["propensity"])) +
      kv("pmf", Object.keys(d.pmf).map((m) => `${esc(m)}: ${n(d, ["pmf", m])}`).join(", ")) +
      kv("candidates", d.candidates ? esc(d.candidates.join(", ")) : "every model") + kv("lambda", n(d, ["lam"])) +
      kv("estimated cost USD", n(d, ["cost_estimate_usd"])) + kv("observed cost USD", n(d, ["cost_observed_usd"])) +
      kv("latency ms", n(d, ["latency_ms"])) +
      kv("feedback", Object.keys(d.feedback).length ? Object.keys(d.feedback).map((s) => `${esc(s)}: ${n(d, ["feedback", s])}`).join(", ") : "none") +
      "</table></div>");
  }

  async function gateway() {
    const api = "/ui/api/gateway";
    const g = await call(api);
    if (!g.configured) { return section(api, '<h1>Gateway</h1><p class="muted">No upstreams are configured (BANDITROUTE_UPSTREAMS).</p>'); }
    const rows = g.upstreams.map((u, i) => "<tr>" + [
      td(esc(u.model)), td(n(g, ["upstreams", i, "calls"]), 1), td(n(g, ["upstreams", i, "errors"]), 1),
      td(n(g, ["upstreams", i, "error_rate"], {pct: 1}), 1), td(n(g, ["upstreams", i, "breaker_skips"]), 1),
      td(`<span class="circuit-${esc(u.circuit)}">${esc(u.circuit)}</span>`),
      td(n(g, ["upstreams", i, "latency_ms", "p50"]), 1), td(n(g, ["upstreams", i, "latency_ms", "p90"]), 1), td(n(g, ["upstreams", i, "latency_ms", "p99"]), 1),
    ].join("") + "</tr>");
    return section(api, `<h1>Gateway upstreams <span class="muted">last hour</span></h1><div class="card">` +
      table(["upstream", "calls#", "errors#", "error rate#", "skipped (breaker open)#", "circuit (this worker)", "p50 ms#", "p90 ms#", "p99 ms#"], rows) + "</div>");
  }

  // ---- routing, refresh, key -----------------------------------------------------------------------------
  function view() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    switch (parts[0]) {
      case "policy": return () => policy(parts[1]);
      case "experiment": return () => experiment(parts[1]);
      case "decisions": return () => decisions(parts[1]);
      case "decision": return () => decision(parts[1]);
      case "gateway": return gateway;
      default: return overview;
    }
  }

  async function render() {
    if (busy) { return; }
    busy = true;
    try {
      const html = await view()();
      $("main").innerHTML = html;
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.dataset.rendered = String(Date.now());
      const stop = $("stop");
      if (stop) { stop.addEventListener("click", () => stopExperiment(stop.dataset.eid)); }
    } catch (e) {
      if (e.status === 401) { login(`The key was refused: ${e.message}`); }
      else { $("main").innerHTML = `<h1>Error</h1><p>${esc(e.message)}</p>`; }
    } finally { busy = false; }
  }

  async function stopExperiment(eid) {
    if (!window.confirm(`Stop experiment ${eid}? Routing through it ends; its data and report stay.`)) { return; }
    try {
      await call(`/v1/experiments/${enc(eid)}/stop`, {method: "POST"});
      flash(`Experiment ${eid} stopped.`, "info");
    } catch (e) {
      flash(`Could not stop ${eid}: ${e.message}`);
    }
    await render();
  }

  function login(reason) {
    clearInterval(timer); timer = null;
    $("main").innerHTML = ""; $("main").hidden = true;
    $("login").hidden = false; $("forget").hidden = true;
    $("login-reason").textContent = reason;
    $("key").focus();
  }

  async function start() {
    try {
      me = await call("/ui/api/whoami");
    } catch (e) {
      if (e.status === 401 || e.status === 403) {
        login(sessionStorage.getItem(KEY) ? `The key was refused: ${e.message}` : "This dashboard needs an API key with the read scope.");
        return;
      }
      flash(`The service did not answer: ${e.message}`);
      return;
    }
    $("login").hidden = true; $("main").hidden = false;
    $("forget").hidden = !me.auth;
    $("nav-gateway").hidden = !me.gateway;
    await render();
    clearInterval(timer);
    timer = setInterval(render, REFRESH_MS);
  }

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("key").value.trim());
    $("key").value = "";
    start();
  });
  $("forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); login("Key forgotten. Enter a key to continue."); });
  window.addEventListener("hashchange", () => { flash(""); if (timer) { render(); } });
  start();
})();
