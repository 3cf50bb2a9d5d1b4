// The tasker page: a task list with filters, and for one task its DAG, its
// attempts on a timeline and each step's details, read from the REST API
// (taskerhttp) and read again every data-refresh-ms while the task runs.
// Plain script, no dependencies; everything is built with DOM calls and
// textContent, never from HTML strings, so no stored value is ever markup.
"use strict";

(() => {
  const body = document.body;
  const cfg = {
    api: body.dataset.api,
    operator: body.dataset.operator === "true",
    refresh: Number(body.dataset.refreshMs) || 1000,
  };
  const TASK_STATES = ["pending", "in_progress", "complete", "error", "cancelled"];
  const ENDED = new Set(["complete", "error", "cancelled"]);
  const KEY_STORE = "tasker-api-key";
  const NODE = { w: 180, h: 46, gapX: 44, gapY: 16, pad: 16 };
  const KIND = { decision: "decision", batchable: "batchable", batch_worker: "batch worker", deferred_convergence: "convergence" };

  // ---- DOM helpers ----

  // el builds an HTML element: attrs are attributes (on* are listeners),
  // kids strings or nodes.
  function el(tag, attrs, ...kids) {
    return build(document.createElement(tag), attrs, kids);
  }

  // sv builds an SVG element.
  function sv(tag, attrs, ...kids) {
    return build(document.createElementNS("http://www.w3.org/2000/svg", tag), attrs, kids);
  }

  function build(node, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      node.append(typeof kid === "string" || typeof kid === "number" ? String(kid) : kid);
    }
    return node;
  }

  const $ = (id) => document.getElementById(id);

  function badge(state, id) {
    return el("span", { class: "badge s-" + state, "data-state": state, id }, state.replace(/_/g, " "));
  }

  function fmtTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    const p = (n, w = 2) => String(n).padStart(w, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
      `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }

  function fmtDur(ms) {
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
    const m = Math.floor(ms / 60000);
    return `${m}m ${Math.round((ms - m * 60000) / 1000)}s`;
  }

  function pretty(raw) {
    try {
      return JSON.stringify(raw, null, 2);
    } catch (e) {
      return String(raw);
    }
  }

  function setStatus(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("error", !!isError);
  }

  // ---- the REST API ----

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // call sends one request to the API, with the stored key if any, and
  // returns the decoded JSON, or throws an APIError with the API's message.
  async function call(method, path, payload) {
    const headers = { Accept: "application/json" };
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers["X-API-Key"] = key;
    const init = { method, headers, cache: "no-store" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const resp = await fetch(cfg.api + path, init);
    const data = await resp.json().catch(() => null);
    if (!resp.ok) {
      const e = (data && data.error) || {};
      throw new APIError(resp.status, e.code || "http_" + resp.status, e.message || resp.statusText);
    }
    return data;
  }

  // report shows an error; a 401 or 403 opens the key bar.
  function report(err) {
    if (err instanceof APIError && (err.status === 401 || err.status === 403)) {
      $("keymsg").textContent = err.message + " —";
      $("keybar").hidden = false;
    }
    setStatus(err instanceof APIError ? `${err.status} ${err.code}: ${err.message}` : "API unreachable: " + err.message, true);
  }

  function setUpKeyBar() {
    $("keyuse").addEventListener("click", () => {
      const v = $("keyinput").value.trim();
      if (v) sessionStorage.setItem(KEY_STORE, v);
      $("keyinput").value = "";
      $("keybar").hidden = true;
      route();
    });
    $("keyforget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      $("keymsg").textContent = "key forgotten —";
    });
  }

  // ---- routing and polling ----

  let generation = 0; // bumped on every route change: older polls stop
  let timer = 0;

  // poll runs tick now and again every cfg.refresh while it returns true
  // and the route has not changed; one tick at a time.
  function poll(tick) {
    const mine = generation;
    clearTimeout(timer);
    const step = async () => {
      if (mine !== generation) return;
      let again = true;
      try {
        again = await tick();
      } catch (err) {
        report(err);
      }
      if (mine === generation && again) timer = setTimeout(step, cfg.refresh);
    };
    step();
  }

  function route() {
    generation++;
    clearTimeout(timer);
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, query] = hash.split("?");
    const m = path.match(/^\/task\/([0-9a-fA-F-]{36})$/);
    if (m) taskView(m[1]);
    else listView(new URLSearchParams(query || ""));
  }

  // ---- the task list ----

  function listView(q) {
    const view = $("view");
    view.replaceChildren(filterForm(q), el("table", { class: "tasks", id: "tasks" },
      el("thead", {}, el("tr", {}, ["created", "template", "state", "initiator", "source", "reason", "tags"].map((h) => el("th", {}, h)))),
      el("tbody", { id: "task-rows" })), el("nav", { class: "pager", id: "pager" }));
    fillTemplateChoices();
    poll(async () => {
      if (document.hidden) return true;
      const page = await call("GET", "/tasks?" + q.toString());
      renderRows(page.tasks);
      renderPager(q, page.next_cursor);
      setStatus(`${page.tasks.length} tasks · refreshed ${fmtTime(new Date().toISOString()).slice(11)}`);
      return true;
    });
  }

  function filterForm(q) {
    const field = (name, label, extra) => el("label", {}, label,
      el("input", Object.assign({ name, value: q.getAll(name).join(","), size: 14 }, extra)));
    const states = new Set(q.getAll("state").flatMap((s) => s.split(",")));
    const form = el("form", { class: "filters", id: "filters" },
      field("namespace", "namespace", { list: "namespaces" }), field("name", "name", { list: "names" }),
      field("initiator", "initiator"), field("source_system", "source"), field("tag", "tags (a,b)"),
      el("fieldset", {}, el("legend", {}, "state"), TASK_STATES.map((s) =>
        el("label", { class: "check" }, el("input", { type: "checkbox", name: "state", value: s, checked: states.has(s) }), s))),
      el("button", { type: "submit" }, "Filter"), el("a", { href: "#/" }, "clear"),
      el("datalist", { id: "namespaces" }), el("datalist", { id: "names" }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      location.hash = "#/?" + queryOf(new FormData(form)).toString();
    });
    return form;
  }

  // queryOf turns the filter form into GET /tasks's query: empty fields
  // dropped, tags split on commas (every one must match).
  function queryOf(fd) {
    const out = new URLSearchParams();
    for (const [k, v] of fd.entries()) {
      const val = String(v).trim();
      if (!val) continue;
      if (k === "tag") val.split(",").map((t) => t.trim()).filter(Boolean).forEach((t) => out.append("tag", t));
      else out.append(k, val);
    }
    return out;
  }

  async function fillTemplateChoices() {
    try {
      const list = await call("GET", "/templates");
      const opts = (xs) => [...new Set(xs)].map((v) => el("option", { value: v }));
      $("namespaces")?.replaceChildren(...opts(list.templates.map((t) => t.namespace)));
      $("names")?.replaceChildren(...opts(list.templates.map((t) => t.name)));
    } catch (err) {
      report(err);
    }
  }

  function renderRows(tasks) {
    const rows = tasks.map((t) => el("tr", { id: "task-" + t.id, "data-state": t.state, class: "row",
      onclick: () => { location.hash = "#/task/" + t.id; } },
    el("td", {}, fmtTime(t.created_at)),
    el("td", {}, el("a", { href: "#/task/" + t.id }, `${t.namespace}/${t.name}@${t.version}`)),
    el("td", {}, badge(t.state)), el("td", {}, t.initiator), el("td", {}, t.source_system),
    el("td", {}, t.reason), el("td", {}, (t.tags || []).join(", "))));
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 7, class: "empty" }, "no task matches")));
    $("task-rows")?.replaceChildren(...rows);
  }

  function renderPager(q, next) {
    const first = new URLSearchParams(q);
    first.delete("cursor");
    const links = [];
    if (q.get("cursor")) links.push(el("a", { href: "#/?" + first.toString() }, "« first page"));
    if (next) {
      const n = new URLSearchParams(first);
      n.set("cursor", next);
      links.push(el("a", { href: "#/?" + n.toString(), id: "next-page" }, "next page »"));
    }
    $("pager")?.replaceChildren(...links);
  }

  // ---- one task ----

  // taskView shows task id, reading it again every cfg.refresh until it
  // ends. view holds what the renderers share.
  function taskView(id) {
    const view = { id, task: null, tmpl: undefined, graph: null, graphKey: "", selected: "", opsKey: "", stepOpsKey: "" };
    $("view").replaceChildren(
      el("p", {}, el("a", { href: "#/" }, "« all tasks")),
      el("section", { id: "task-head", class: "head" }),
      el("div", { id: "task-ops", class: "ops" }),
      el("div", { class: "taskgrid" },
        el("div", { class: "maincol" },
          el("h2", {}, "Graph"), el("div", { id: "graph", class: "graph" }),
          el("h2", {}, "Attempts"), el("div", { id: "timeline", class: "timeline" })),
        el("aside", { id: "details", class: "details", hidden: true },
          el("div", { id: "details-info" }), el("div", { id: "details-ops" }))));
    startTaskPoll(view);
  }

  function startTaskPoll(view) {
    poll(async () => {
      const task = await call("GET", "/tasks/" + view.id);
      if (view.tmpl === undefined) view.tmpl = await templateOf(task);
      view.task = task;
      renderTask(view);
      const ended = ENDED.has(task.state);
      setStatus(ended ? `task ${task.state} · not refreshing` : `live · every ${cfg.refresh / 1000} s · ${fmtTime(new Date().toISOString()).slice(11)}`);
      return !ended;
    });
  }

  // templateOf reads the task's template, or null when it is not loaded:
  // the graph then has the task's steps without edges.
  async function templateOf(task) {
    const path = ["", "templates", task.namespace, task.name, task.version].map(encodeURIComponent).join("/");
    try {
      return await call("GET", path);
    } catch (err) {
      if (err instanceof APIError && err.status === 404) return null;
      throw err;
    }
  }

  function renderTask(view) {
    renderHead(view.task);
    renderTaskOps(view);
    const g = buildGraph(view.task, view.tmpl);
    view.graph = g;
    const key = g.nodes.map((n) => n.name).join(" ") + "|" + g.edges.map((e) => e.from + ">" + e.to).join(" ");
    if (key !== view.graphKey) {
      $("graph").replaceChildren(drawGraph(g, (name) => select(view, name)));
      view.graphKey = key;
    }
    updateGraph(g, view.selected);
    renderDetails(view); // first: it narrows the column the timeline fits
    $("timeline").replaceChildren(drawTimeline(view.task, g.nodes, (name) => select(view, name)));
  }

  function renderHead(t) {
    const meta = (label, value) => value ? el("span", { class: "meta" }, el("b", {}, label + " "), value) : null;
    $("task-head").replaceChildren(
      el("h1", {}, `${t.namespace}/${t.name}@${t.version} `, badge(t.state, "task-state")),
      el("div", { class: "metas" }, meta("id", t.id), meta("initiator", t.initiator), meta("source", t.source_system),
        meta("reason", t.reason), meta("tags", (t.tags || []).join(", ")), meta("created", fmtTime(t.created_at)),
        meta("started", t.started_at && fmtTime(t.started_at)), meta("finished", t.finished_at && fmtTime(t.finished_at)),
        meta("deadline", t.deadline && fmtTime(t.deadline))));
  }

  // select shows step name's details, or hides them when it is shown
  // already or name is "".
  function select(view, name) {
    view.selected = view.selected === name ? "" : name;
    renderTask(view);
  }

  // ---- the graph ----

  // buildGraph returns the task's nodes, in template order, and edges. A
  // batch worker template stands for its instances ("{worker}_{batch_id}"),
  // or is one not_created node while it has none.
  function buildGraph(task, tmpl) {
    const steps = task.steps || [];
    const stepByName = new Map(steps.map((s) => [s.name, s]));
    const nodes = [];
    const standsFor = new Map(); // a template step's name → the node names it is drawn as
    const placed = new Set();
    const add = (name, spec, step, of) => {
      nodes.push({ name, of, type: spec ? spec.type : "standard", deps: spec ? spec.dependencies || [] : [],
        state: step ? step.state : "not_created", step, placeholder: !step });
      placed.add(name);
      return name;
    };
    for (const spec of (tmpl && tmpl.steps) || []) {
      let names = [];
      if (stepByName.has(spec.name)) names = [add(spec.name, spec, stepByName.get(spec.name), "")];
      else if (spec.type === "batch_worker") {
        names = steps.filter((s) => !placed.has(s.name) && s.name.startsWith(spec.name + "_") && !tmpl.steps.some((o) => o.name === s.name))
          .map((s) => add(s.name, spec, s, spec.name));
        if (names.length === 0) names = [add(spec.name, spec, null, "")];
      } else names = [add(spec.name, spec, null, "")];
      standsFor.set(spec.name, names);
    }
    for (const s of steps) if (!placed.has(s.name)) add(s.name, null, s, ""); // no template: no edges
    const edges = [];
    for (const n of nodes) {
      for (const d of n.deps) for (const from of standsFor.get(d) || []) edges.push({ from, to: n.name });
    }
    return { nodes, edges, depth: depths(nodes, edges) };
  }

  // depths maps each node to its column: the longest path from a root.
  function depths(nodes, edges) {
    const into = new Map(nodes.map((n) => [n.name, []]));
    for (const e of edges) into.get(e.to).push(e.from);
    const memo = new Map();
    const visit = (name, seen) => {
      if (memo.has(name)) return memo.get(name);
      if (seen.has(name)) return 0; // a cycle cannot load; guard all the same
      seen.add(name);
      let d = 0;
      for (const from of into.get(name) || []) d = Math.max(d, visit(from, seen) + 1);
      memo.set(name, d);
      return d;
    };
    for (const n of nodes) visit(n.name, new Set());
    return memo;
  }

  // layout places each node: columns by depth, rows in template order, each
  // column centred on the tallest.
  function layout(g) {
    const cols = [];
    for (const n of g.nodes) {
      const d = g.depth.get(n.name);
      (cols[d] = cols[d] || []).push(n.name);
    }
    const tallest = Math.max(1, ...cols.map((c) => (c ? c.length : 0)));
    const pos = new Map();
    cols.forEach((col, d) => {
      const off = ((tallest - col.length) * (NODE.h + NODE.gapY)) / 2;
      col.forEach((name, r) => pos.set(name, { x: NODE.pad + d * (NODE.w + NODE.gapX), y: NODE.pad + off + r * (NODE.h + NODE.gapY) }));
    });
    return { pos, width: NODE.pad * 2 + cols.length * (NODE.w + NODE.gapX) - NODE.gapX, height: NODE.pad * 2 + tallest * (NODE.h + NODE.gapY) - NODE.gapY };
  }

  function drawGraph(g, onPick) {
    const { pos, width, height } = layout(g);
    const edges = g.edges.map((e) => {
      const a = pos.get(e.from), b = pos.get(e.to);
      const x1 = a.x + NODE.w, y1 = a.y + NODE.h / 2, x2 = b.x - 2, y2 = b.y + NODE.h / 2, mid = (x1 + x2) / 2;
      return sv("path", { class: "edge", "data-from": e.from, "data-to": e.to, "marker-end": "url(#arrow)",
        d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` });
    });
    const nodes = g.nodes.map((n) => {
      const p = pos.get(n.name);
      const label = n.name.length > 23 ? n.name.slice(0, 22) + "…" : n.name;
      return sv("g", { id: "step-" + n.name, class: "node", "data-type": n.type, "data-state": n.state,
        transform: `translate(${p.x},${p.y})`, tabindex: 0, role: "button",
        onclick: () => onPick(n.name), onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") onPick(n.name); } },
      sv("title", {}), sv("rect", { width: NODE.w, height: NODE.h, rx: n.type === "decision" ? 18 : 6 }),
      sv("text", { class: "label", x: 10, y: 19 }, label), sv("text", { class: "meta", x: 10, y: 36 }));
    });
    return sv("svg", { id: "dag", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "the task's DAG" },
      sv("defs", {}, sv("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        sv("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))),
      sv("g", { class: "edges" }, edges), sv("g", { class: "nodes" }, nodes));
  }

  // updateGraph sets each node's state, text and selection, and dims the
  // edges that touch a step that does not exist.
  function updateGraph(g, selected) {
    const state = new Map(g.nodes.map((n) => [n.name, n.state]));
    for (const n of g.nodes) {
      const node = $("step-" + n.name);
      if (!node) continue;
      node.setAttribute("data-state", n.state);
      node.classList.toggle("selected", n.name === selected);
      const tries = n.step && n.state !== "not_created" ? `${n.step.attempts}/${n.step.max_attempts || "?"}` : "";
      const kind = KIND[n.type] ? KIND[n.type] + " · " : "";
      node.querySelector("text.meta").textContent = `${kind}${n.state.replace(/_/g, " ")}${tries ? " · " + tries : ""}`;
      node.querySelector("title").textContent = `${n.name} (${n.type}${n.of ? " of " + n.of : ""}): ${n.state}`;
    }
    for (const path of document.querySelectorAll("#dag path.edge")) {
      const dim = state.get(path.dataset.from) === "not_created" || state.get(path.dataset.to) === "not_created";
      path.classList.toggle("dim", dim);
    }
  }

  // ---- the timeline ----

  // attemptsOf returns a step's attempts from its transitions, as
  // tasker's Step.History does: each starts when the step moves to
  // in_progress and ends with its next move out of in_progress.
  function attemptsOf(step) {
    const out = [];
    for (const tr of (step && step.transitions) || []) {
      if (tr.to === "in_progress") out.push({ attempt: tr.attempt, start: Date.parse(tr.at), end: 0, outcome: "in_progress", error: null });
      else if (tr.from === "in_progress" && out.length > 0) {
        const a = out[out.length - 1];
        Object.assign(a, { end: Date.parse(tr.at), outcome: tr.to, error: tr.error || null });
      }
    }
    return out;
  }

  // span returns the timeline's start and end: from the task's start to its
  // end, or to now while it runs.
  function span(task) {
    const times = [];
    for (const s of task.steps || []) for (const tr of s.transitions || []) times.push(Date.parse(tr.at));
    const t0 = Date.parse(task.started_at || task.created_at);
    const last = Math.max(t0 + 1, ...times);
    const t1 = task.finished_at ? Math.max(Date.parse(task.finished_at), last) : Math.max(Date.now(), last);
    return [t0, t1];
  }

  function drawTimeline(task, nodes, onPick) {
    const [t0, t1] = span(task);
    const labelW = 200, rowH = 22, top = 22;
    const width = Math.max(600, ($("timeline").clientWidth || 900) - 4);
    const plotW = width - labelW - 16;
    const x = (t) => labelW + ((t - t0) / (t1 - t0)) * plotW;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const tx = labelW + f * plotW;
      return sv("g", { class: "tick" }, sv("line", { x1: tx, x2: tx, y1: top - 4, y2: top + nodes.length * rowH }),
        sv("text", { x: tx, y: 12, "text-anchor": f === 1 ? "end" : f === 0 ? "start" : "middle" }, "+" + fmtDur(f * (t1 - t0))));
    });
    const rows = nodes.map((n, i) => {
      const y = top + i * rowH;
      const bars = attemptsOf(n.step).map((a) => {
        const end = a.end || t1, bx = x(a.start);
        const tip = `${n.name} attempt ${a.attempt}: ${a.outcome.replace(/_/g, " ")}, ${fmtDur(end - a.start)}${a.error ? " — " + a.error.message : ""}`;
        return sv("rect", { class: "attempt", id: `attempt-${n.name}-${a.attempt}`, "data-outcome": a.outcome,
          x: bx, y: y + 4, width: Math.max(3, x(end) - bx), height: rowH - 8, rx: 3 }, sv("title", {}, tip));
      });
      return sv("g", { class: "trow", "data-step": n.name, onclick: () => onPick(n.name) },
        sv("rect", { class: "hit", x: 0, y, width, height: rowH }),
        sv("text", { class: "tlabel", x: 4, y: y + 15 }, n.name.length > 28 ? n.name.slice(0, 27) + "…" : n.name), bars);
    });
    const height = top + nodes.length * rowH + 6;
    return sv("svg", { id: "attempts", width, height, viewBox: `0 0 ${width} ${height}` }, ticks, rows);
  }

  // ---- a step's details ----

  function renderDetails(view) {
    const box = $("details");
    const n = view.graph && view.graph.nodes.find((x) => x.name === view.selected);
    box.hidden = !n;
    if (!n) {
      view.stepOpsKey = "";
      return;
    }
    $("details-info").replaceChildren(...detailsOf(n, () => select(view, "")));
    const key = n.name + ":" + n.state;
    if (key !== view.stepOpsKey) {
      $("details-ops").replaceChildren(...stepOps(view, n));
      view.stepOpsKey = key;
    }
  }

  function detailsOf(n, onClose) {
    const s = n.step;
    const head = el("h3", {}, n.name + " ", badge(n.state, "details-state"),
      el("button", { type: "button", class: "close", id: "details-close", onclick: onClose }, "×"));
    if (!s || n.state === "not_created") return [head, el("p", { class: "muted" }, n.of || n.type === "batch_worker" ? "No batch worker created yet." : "This step was not created: the decision upstream has not chosen it (yet).")];
    const dl = el("dl", {});
    for (const [k, v] of [["type", n.type + (n.of ? ` (instance of ${n.of})` : "")], ["attempts", `${s.attempts} of ${s.max_attempts || "?"}`],
      ["started", fmtTime(s.started_at)], ["finished", fmtTime(s.finished_at)], ["next attempt", s.next_attempt_at && fmtTime(s.next_attempt_at)]]) {
      if (v) dl.append(el("dt", {}, k), el("dd", {}, v));
    }
    if (s.subtask) dl.append(el("dt", {}, "sub-task"), el("dd", {}, el("a", { href: "#/task/" + s.subtask }, s.subtask)));
    return [head, dl, resultOf(s), errorOf(s.last_error), attemptTable(s), transitionTable(s)].filter(Boolean);
  }

  function resultOf(s) {
    if (s.result === undefined) return null;
    return el("div", {}, el("h4", {}, "Result"), el("pre", { id: "details-result" }, pretty(s.result)));
  }

  function errorOf(f) {
    if (!f) return null;
    return el("div", { class: "failure", id: "details-error" }, el("h4", {}, "Last error"),
      el("p", {}, el("b", {}, f.message)),
      el("p", { class: "muted" }, `${f.type}${f.code ? " · " + f.code : ""} · attempt ${f.attempt} · ${f.retryable ? "retryable" : "not retryable"}`),
      f.stack ? el("details", {}, el("summary", {}, "stack"), el("pre", {}, f.stack)) : null);
  }

  function attemptTable(s) {
    const rows = attemptsOf(s).map((a) => el("tr", {}, el("td", {}, a.attempt), el("td", {}, fmtTime(new Date(a.start).toISOString())),
      el("td", {}, a.end ? fmtDur(a.end - a.start) : "running"), el("td", {}, badge(a.outcome)), el("td", {}, a.error ? a.error.message : "")));
    if (rows.length === 0) return null;
    return el("div", {}, el("h4", {}, "Attempts"), el("table", { class: "small" },
      el("tr", {}, ["#", "started", "took", "outcome", "error"].map((h) => el("th", {}, h))), rows));
  }

  function transitionTable(s) {
    const rows = (s.transitions || []).map((tr) => el("tr", {}, el("td", {}, tr.seq), el("td", {}, `${tr.from || "–"} → ${tr.to}`),
      el("td", {}, tr.attempt), el("td", {}, fmtTime(tr.at)), el("td", {}, tr.by || ""), el("td", {}, tr.reason || "")));
    if (rows.length === 0) return null;
    return el("div", {}, el("h4", {}, "Audit trail"), el("table", { class: "small" },
      el("tr", {}, ["seq", "move", "attempt", "at", "by", "reason"].map((h) => el("th", {}, h))), rows));
  }

  // ---- operator actions (Options.Operator only) ----

  // act calls the API for an operator action, then reads the task again
  // (and keeps reading while it runs).
  async function act(view, method, path, payload, done) {
    try {
      await call(method, path, payload);
      setStatus(done);
      view.opsKey = view.stepOpsKey = "";
      generation++; // the poll in flight, if any, stops: one poll at a time
      startTaskPoll(view);
    } catch (err) {
      report(err);
    }
  }

  // confirmButton is a button that asks once more before it acts.
  function confirmButton(id, label, question, run) {
    const box = el("span", { class: "confirm" });
    const ask = () => box.replaceChildren(el("span", {}, question + " "),
      el("button", { type: "button", id: id + "-yes", class: "danger", onclick: run }, "Yes"),
      el("button", { type: "button", onclick: reset }, "No"));
    const reset = () => box.replaceChildren(el("button", { type: "button", id, onclick: ask }, label));
    reset();
    return box;
  }

  function renderTaskOps(view) {
    const t = view.task;
    const key = cfg.operator + ":" + t.state;
    if (key === view.opsKey) return;
    view.opsKey = key;
    if (!cfg.operator) return $("task-ops").replaceChildren();
    const reason = el("input", { id: "op-reason", placeholder: "reason (for the audit trail)", size: 32 });
    const base = "/tasks/" + t.id;
    const buttons = [];
    if (!ENDED.has(t.state)) buttons.push(confirmButton("op-cancel", "Cancel task", "Cancel this task?",
      () => act(view, "DELETE", base, { reason: reason.value }, "cancel requested")));
    if (t.state === "error") buttons.push(confirmButton("op-retry", "Retry task", "Run its failed steps again?",
      () => act(view, "POST", base + "/retry", { reason: reason.value }, "retry requested")));
    $("task-ops").replaceChildren(...(buttons.length ? [el("b", {}, "Operator: "), reason, ...buttons] : []));
  }

  function stepOps(view, n) {
    if (!cfg.operator || n.state !== "error") return [];
    const result = el("textarea", { id: "op-result", rows: 3, cols: 40, placeholder: "result as JSON (optional)" });
    const reason = el("input", { id: "op-step-reason", placeholder: "reason", size: 30 });
    const msg = el("span", { class: "error" });
    const run = () => {
      let parsed = null;
      try {
        parsed = result.value.trim() ? JSON.parse(result.value) : null;
      } catch (e) {
        msg.textContent = "result: " + e.message;
        return;
      }
      act(view, "PATCH", `/tasks/${view.id}/workflow_steps/${encodeURIComponent(n.name)}`,
        { action_type: "resolve_manually", result: parsed, reason: reason.value }, "step resolved");
    };
    return [el("h4", {}, "Resolve manually"), result, el("br"), reason,
      confirmButton("op-resolve", "Resolve step", "Mark it resolved with this result?", run), msg];
  }

  // ---- start ----

  setUpKeyBar();
  window.addEventListener("hashchange", route);
  route();
})();
