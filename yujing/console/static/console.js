// Yujing duty console: fills the server-rendered pages from JSON and keeps them live over
// Server-Sent Events. Vanilla JS, no build step, no libraries. Data is only ever put into
// the page as text (textContent / attributes), never as HTML.
"use strict";
(function () {
  const YJ = window.YJ, T = window.T, P = YJ.prefix;
  const GRADES = [4, 3, 2, 1];
  const ROMAN = {1: "IV", 2: "III", 3: "II", 4: "I"};
  const COLOURS = {1: "#1f5fbf", 2: "#b89800", 3: "#e07b00", 4: "#c8102e"};
  const DASH = {1: "1 4", 2: "4 3", 3: "9 3", 4: "14 3 3 3"};
  const OPEN = {active: true, acknowledged: true};
  const OPS = {">=": "≥", "<=": "≤"};
  const NS = "http://www.w3.org/2000/svg";
  // station marks repeat the badges' shapes: ◆ red, ▲ orange, ■ yellow, ● blue, ○ none
  const SHAPES = {0: "M-6,0a6,6 0 1,0 12,0a6,6 0 1,0 -12,0", 1: "M-7,0a7,7 0 1,0 14,0a7,7 0 1,0 -14,0",
                  2: "M-7,-7h14v14h-14z", 3: "M0,-10L9.5,7H-9.5z", 4: "M0,-11L11,0L0,11L-11,0z"};

  function h(tag, attrs, ...kids) {
    const el = tag.startsWith("svg:") ? document.createElementNS(NS, tag.slice(4))
                                      : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "on") { for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn); }
      else if (k === "class" && !tag.startsWith("svg:")) el.className = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) {
      if (k === null || k === undefined || k === false) continue;
      el.appendChild(typeof k === "object" ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  const $ = (sel) => document.querySelector(sel);
  const put = (el, ...kids) => el.replaceChildren(
    ...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
  const fmt = new Intl.DateTimeFormat(YJ.lang === "en" ? "en-GB" : "zh-CN", {
    timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", second: "2-digit", hour12: false});
  const fmtShort = new Intl.DateTimeFormat("en-GB", {timeZone: "Asia/Shanghai",
    hour: "2-digit", minute: "2-digit", hour12: false});
  const when = (ms) => ms ? fmt.format(new Date(ms)) : "—";
  const tr = (k) => T[k] || k;
  const badge = (g) => h("span", {class: "badge g" + (g || 0), "data-grade": g || 0},
                         h("i", {class: "ico", "aria-hidden": "true"}), tr("grade_" + (g || 0)));
  const stateChip = (s) => h("span", {class: "state " + s}, tr("st_" + s));
  const num = (v) => (Math.round(v * 100) / 100).toString();
  // the book's reason in the page's language where the worker wrote one, else as written
  const reasonOf = (x) => (YJ.lang === "en" ? x.reason_en : x.reason_zh) || x.reason || "";
  const cell = (key, attrs, ...kids) => h("td", {"data-label": tr(key), ...(attrs || {})}, ...kids);
  const since = (ms) => {
    const m = Math.max(0, Math.round(ms / 60000));
    return m < 60 ? `${m}m` : `${Math.floor(m / 60)}h${m % 60 ? (m % 60) + "m" : ""}`;
  };

  // the header's menu on a narrow screen (CSS shows the button there only)
  function menu() {
    const btn = $("#menu"), head = document.querySelector("header");
    if (!btn) return;
    btn.addEventListener("click", () => {
      const open = !head.classList.contains("open");
      head.classList.toggle("open", open);
      btn.setAttribute("aria-expanded", String(open));
    });
  }

  // a response plan: its steps as a list, an illustrative one marked as such
  function plan(box, view) {
    if (!view) { put(box, h("p", {class: "help"}, tr("no_plan"))); return; }
    put(box, view.illustrative ? h("p", {class: "illustrative"}, "⚠ " + tr("illustrative")) : null,
      h("ul", {class: "steps"}, view.steps.map((st) => h("li", {},
        st.label ? h("b", {}, st.label + "：") : null, st.text))));
  }

  async function getJSON(url) {
    const r = await fetch(url, {credentials: "same-origin", cache: "no-store"});
    if (r.status === 401) { location.href = P + "/login?next=" + encodeURIComponent(location.pathname); throw new Error("401"); }
    return r.json();
  }
  async function post(url, body) {
    const r = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    let data = {};
    try { data = await r.json(); } catch (e) { /* empty body */ }
    return {status: r.status, data};
  }

  // --- the live stream -------------------------------------------------------------------
  function live(handlers, onOpen) {
    const badgeEl = $("#live");
    let es;
    function connect() {
      es = new EventSource(P + "/events");
      es.addEventListener("hello", () => {
        badgeEl.hidden = false; badgeEl.className = "live"; badgeEl.textContent = "● " + tr("live");
        onOpen && onOpen();
      });
      for (const [name, fn] of Object.entries(handlers))
        es.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
      es.onerror = () => {
        badgeEl.hidden = false; badgeEl.className = "live off"; badgeEl.textContent = tr("offline");
      };
    }
    connect();
  }

  // A store of warning summaries, kept current by the stream (newer snapshot wins).
  function store(onChange) {
    const ws = new Map();
    function put(w) {
      const old = ws.get(w.incident);
      if (old && old.updated_ms > w.updated_ms && old.entries > w.entries) return false;
      ws.set(w.incident, w); return true;
    }
    return {
      ws,
      async load() {
        const b = await getJSON(P + "/api/board");
        for (const w of b.warnings) put(w);
        onChange(b, null);
        return b;
      },
      handlers: {
        incident: (w) => { if (put(w)) onChange(null, w.incident); },
        removed: (d) => { ws.delete(d.incident); onChange(null, null); },
      },
    };
  }

  function sortWarnings(list) {
    return list.sort((a, b) => (OPEN[b.state] ? 1 : 0) - (OPEN[a.state] ? 1 : 0)
      || b.grade - a.grade || (b.raised_ms || b.updated_ms) - (a.raised_ms || a.updated_ms));
  }

  // --- board -------------------------------------------------------------------------------
  function board() {
    const f = {town: $("#f-town"), domain: $("#f-domain"), hazard: $("#f-hazard"),
               grade: $("#f-grade"), cleared: $("#f-cleared")};
    const seen = new Set();
    const s = store((b, changed) => {
      if (b) {
        fill(f.town, b.towns);
        fill(f.hazard, b.hazards);
        for (const w of b.warnings) seen.add(w.incident);   // only what changes later flashes
      }
      render(changed);
    });
    function fill(sel, values) {
      const have = new Set([...sel.options].map((o) => o.value));
      for (const v of values) if (!have.has(v)) sel.appendChild(h("option", {value: v}, v));
    }
    function render(changed) {
      const all = [...s.ws.values()];
      const open = all.filter((w) => OPEN[w.state]);
      for (const g of GRADES)
        $(`.counter[data-grade="${g}"] .n`).textContent = open.filter((w) => w.grade === g).length;
      const rows = sortWarnings(all.filter((w) =>
        (OPEN[w.state] || (f.cleared.checked && w.state === "cleared"))
        && (!f.town.value || w.town === f.town.value)
        && (!f.domain.value || w.domain === f.domain.value)
        && (!f.hazard.value || w.hazard === f.hazard.value)
        && (!f.grade.value || String(w.grade) === f.grade.value)));
      const body = $("#board tbody");
      put(body, ...rows.map((w) => {
        const row = h("tr", {class: "st-" + w.state + (changed === w.incident || !seen.has(w.incident) ? " flash" : ""),
                             "data-incident": w.incident, "data-grade": w.grade,
                             on: {click: () => { location.href = P + "/warnings/" + encodeURIComponent(w.incident); }}},
          cell("grade", {class: "c-grade"}, badge(w.grade)),
          cell("hazard", {}, w.rule_name, h("br"), h("small", {}, tr("d_" + w.domain) + " · " + w.hazard)),
          cell("station", {class: "c-station"}, h("a", {class: "name", href: P + "/warnings/" + encodeURIComponent(w.incident)}, w.station_name),
            h("br"), h("small", {}, w.station)),
          cell("town", {}, w.town),
          cell("state", {}, stateChip(w.state), w.acked_name ? h("small", {}, " " + w.acked_name) : null,
            w.report_due ? h("div", {}, h("b", {class: "due"}, tr("report_due"))) : null,
            w.muted ? h("div", {}, h("small", {title: w.muted}, "⏸ " + tr("muted"))) : null),
          cell("raised", {}, when(w.raised_ms)),
          cell("reason", {class: "reason", title: w.detail || ""}, reasonOf(w)),
          cell("team", {}, h("small", {}, w.team_name || w.team || "—")));
        return row;
      }));
      for (const w of rows) seen.add(w.incident);
      $("#empty").hidden = rows.length > 0;
      pending(all);
      due(all);
    }
    // warnings whose condition holds but whose for: has not run out: nobody is told yet
    function pending(all) {
      const ps = all.filter((w) => w.state === "pending"
        && (!f.town.value || w.town === f.town.value)
        && (!f.domain.value || w.domain === f.domain.value)
        && (!f.hazard.value || w.hazard === f.hazard.value))
        .sort((a, b) => b.grade - a.grade || a.first_ts - b.first_ts);
      $("#pending-n").textContent = ps.length;
      put($("#pending tbody"), ...ps.map((w) => h("tr", {class: "st-pending", "data-incident": w.incident,
          "data-grade": w.grade, on: {click: () => { location.href = P + "/warnings/" + encodeURIComponent(w.incident); }}},
        cell("grade", {class: "c-grade"}, badge(w.grade), " ", stateChip("pending")),
        cell("hazard", {}, w.rule_name),
        cell("station", {class: "c-station"}, h("a", {class: "name", href: P + "/warnings/" + encodeURIComponent(w.incident)}, w.station_name),
          h("br"), h("small", {}, w.station)),
        cell("town", {}, w.town),
        cell("held", {class: "held"}, `${since((w.last_ts || 0) - (w.first_ts || 0))} / ${w.hold || "—"}`),
        cell("reason", {class: "reason"}, reasonOf(w)))));
      $("#pending-empty").hidden = ps.length > 0;
    }
    // 待回报: orange and red warnings (open, or closed by their rule) with no report-back yet
    function due(all) {
      const ds = all.filter((w) => w.report_due).sort((a, b) => b.grade - a.grade || a.raised_ms - b.raised_ms);
      $("#due-n").textContent = ds.length;
      put($("#due-list"), ...ds.map((w) => h("li", {"data-incident": w.incident}, badge(w.grade), " ",
        h("a", {href: P + "/warnings/" + encodeURIComponent(w.incident)}, `${w.rule_name} · ${w.station_name}`),
        " ", stateChip(w.state), h("small", {}, ` ${w.town} · ${when(w.raised_ms)}`))));
    }
    for (const el of Object.values(f)) el.addEventListener("change", () => render(null));
    live(s.handlers, () => s.load());
  }

  // --- map ---------------------------------------------------------------------------------
  function stationMap() {
    const s = store(() => paint());
    function paint() {
      const worst = new Map();
      for (const w of s.ws.values()) {
        if (!OPEN[w.state]) continue;
        const cur = worst.get(w.station);
        if (!cur || w.grade > cur.grade) worst.set(w.station, w);
      }
      const svg = $("#map");
      for (const g of document.querySelectorAll("#map .st")) {
        const w = worst.get(g.dataset.station);
        const grade = w ? w.grade : 0;
        g.setAttribute("class", "st g" + grade);
        g.setAttribute("data-grade", grade);
        g.querySelector(".shape").setAttribute("d", SHAPES[grade]);
        g.querySelector(".gl").textContent = grade ? ROMAN[grade] : "";
      }
      // warned stations on top of quiet ones, the worst last (on top)
      for (const g of [...document.querySelectorAll("#map .st")].filter((x) => x.dataset.grade !== "0")
                        .sort((a, b) => a.dataset.grade - b.dataset.grade)) svg.appendChild(g);
      const list = $("#map-list");
      put(list, ...[...worst.values()].sort((a, b) => b.grade - a.grade).map((w) =>
        h("li", {}, badge(w.grade), " ", h("a", {href: P + "/stations/" + encodeURIComponent(w.station)},
          w.station_name), " ", h("small", {}, w.town + " · " + w.rule_name))));
    }
    for (const g of document.querySelectorAll("#map .st")) {
      const go = () => { location.href = P + "/stations/" + encodeURIComponent(g.dataset.station); };
      g.addEventListener("click", go);
      g.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
    }
    live(s.handlers, () => s.load());
  }

  // --- chart (inline SVG) ----------------------------------------------------------------------
  function niceTicks(lo, hi, n) {
    const span = hi - lo || 1, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6);
    return out;
  }
  function chart(box, series, markTs) {
    put(box, );
    box.className = "chart";
    if (!series.length) { box.appendChild(h("p", {class: "empty"}, tr("no_readings"))); return; }
    for (const s of series) {
      const W = 760, H = 280, L = 52, R = 200, TOP = 26, B = 30;
      const xs = s.ts;
      let t0 = Math.min(...xs), t1 = Math.max(...xs);
      if (markTs && markTs < t0) t0 = markTs;
      if (t1 === t0) t1 = t0 + 60000;
      const vals = s.val.concat(...s.aggs.map((a) => a.val), s.lines.map((l) => l.value));
      let lo = Math.min(...vals), hi = Math.max(...vals);
      if (lo > 0 && lo < 0.4 * hi) lo = 0;          // amounts start at zero, levels need not
      if (hi === lo) { hi += 1; lo -= 1; }
      const pad = (hi - lo) * 0.08;
      hi += pad; if (lo !== 0) lo -= pad;
      const X = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
      const Y = (v) => TOP + (hi - v) / (hi - lo) * (H - TOP - B);
      const svg = h("svg:svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "data-metric": s.metric});
      svg.appendChild(h("svg:text", {x: L, y: 16, class: "cap"}, s.metric));
      for (const v of niceTicks(lo, hi, 6)) {
        svg.appendChild(h("svg:line", {x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: "gridl"}));
        svg.appendChild(h("svg:text", {x: L - 6, y: Y(v) + 4, "text-anchor": "end"}, num(v)));
      }
      const tsStep = (t1 - t0) / 6;
      for (let i = 0; i <= 6; i++) {
        const t = t0 + i * tsStep;
        svg.appendChild(h("svg:text", {x: X(t), y: H - 10, "text-anchor": "middle"}, fmtShort.format(new Date(t))));
      }
      svg.appendChild(h("svg:line", {x1: L, x2: L, y1: TOP, y2: H - B, class: "axis"}));
      svg.appendChild(h("svg:line", {x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis"}));
      const pts = (ys) => xs.map((t, i) => `${X(t).toFixed(1)},${Y(ys[i]).toFixed(1)}`).join(" ");
      svg.appendChild(h("svg:polyline", {points: pts(s.val), class: "raw"}));
      if (xs.length <= 240) for (let i = 0; i < xs.length; i++)
        svg.appendChild(h("svg:circle", {cx: X(xs[i]), cy: Y(s.val[i]), r: 1.8, class: "rawdot"}));
      let legendY = TOP + 4;
      const legend = (text, colour, dash) => {
        svg.appendChild(h("svg:line", {x1: W - R + 8, x2: W - R + 30, y1: legendY, y2: legendY,
          stroke: colour, "stroke-width": 2.2, "stroke-dasharray": dash || null}));
        svg.appendChild(h("svg:text", {x: W - R + 34, y: legendY + 4}, text));
        legendY += 16;
      };
      legend(tr("value"), "#5a6b7d");
      for (const a of s.aggs) {
        svg.appendChild(h("svg:polyline", {points: pts(a.val), class: "agg"}));
        legend(`${a.agg}(${a.window})`, "#0b57a4");
      }
      for (const l of s.lines) {
        const y = Y(l.value);
        svg.appendChild(h("svg:line", {x1: L, x2: W - R, y1: y, y2: y, class: "thr",
          stroke: COLOURS[l.grade], "stroke-dasharray": DASH[l.grade], "data-grade": l.grade}));
        const on = l.window ? ` · ${l.agg}(${l.window})` : "";
        const op = {">=": "≥", "<=": "≤"}[l.op] || l.op;
        legend(`${tr("grade_" + l.grade)} ${op} ${num(l.value)}${on}${l.source ? " · " + l.source : ""}`,
               COLOURS[l.grade], DASH[l.grade]);
      }
      if (markTs && markTs >= t0 && markTs <= t1) {
        svg.appendChild(h("svg:line", {x1: X(markTs), x2: X(markTs), y1: TOP, y2: H - B, class: "mark"}));
      }
      box.appendChild(svg);
    }
  }

  function personText(p) { return p ? `${p.name}${p.phone ? " " + p.phone : ""}` : "—"; }

  // --- warning detail ----------------------------------------------------------------------------
  function detail() {
    const iid = YJ.incident;
    let timer = null, pending = false;
    async function load() {
      const d = await getJSON(P + "/api/warnings/" + encodeURIComponent(iid));
      if (d.error) { put($("#w-head"), h("p", {class: "empty"}, d.error)); return; }
      render(d);
    }
    function render(d) {
      document.title = `${tr("grade_" + d.grade)} ${d.rule_name} · ${d.station_name}`;
      put($("#w-head"), badge(d.grade), h("h1", {}, `${d.rule_name} · ${d.station_name}`),
        stateChip(d.state), d.muted ? h("span", {class: "state", title: d.muted}, "⏸ " + tr("muted")) : null,
        h("div", {class: "meta"}, `${d.incident} · ${d.town} · ${tr("d_" + d.domain)} · ${d.hazard}` +
          ` · ${tr("raised")} ${when(d.raised_ms)} · ${tr("value")} ${num(d.value)} ${d.window || ""}`,
          h("br"), h("span", {class: "reason", id: "w-reason"}, reasonOf(d)),
          d.cap ? h("span", {}, " · ", h("a", {href: d.cap}, "CAP")) : null,
          d.detail && d.detail !== reasonOf(d) ? h("div", {class: "detail"}, h("small", {}, d.detail)) : null));
      const acts = $("#actions"), more = $("#actions-more");
      acts.classList.toggle("denied", !d.can_act);
      more.classList.toggle("denied", !d.can_act);
      for (const id of ["btn-ack", "btn-note", "btn-clear", "btn-silence"]) {
        const b = document.getElementById(id);
        const closed = d.state === "cleared" && id !== "btn-note";
        b.disabled = !d.can_act || closed || (id === "btn-ack" && d.state !== "active");
        b.title = d.can_act ? "" : d.why;
      }
      for (const el of [...acts.querySelectorAll("input, select"), ...more.querySelectorAll("input, select")])
        el.disabled = !d.can_act;
      if (!d.can_act) setMsg(tr("no_rights") + ": " + d.why, true);
      $("#report-due").hidden = !d.report_due;
      $("#report-box").open = $("#report-box").open || !!(d.report_due && d.can_act);
      for (const el of $("#f-report").querySelectorAll("input, select, textarea, button")) el.disabled = !d.can_act;
      const tl = $("#timeline");
      put(tl, ...d.timeline.map((e) => h("li", {class: "k-" + e.kind, "data-kind": e.kind},
        h("span", {}, when(e.at)),
        h("span", {}, h("span", {class: "k"}, tr("k_" + e.kind)),
          e.actor && e.actor !== "rule" && e.actor !== "system" ? h("div", {}, h("small", {}, e.actor_name)) : null),
        h("span", {}, reasonOf(e),
          e.channel ? h("small", {}, ` [${e.channel}]`) : null,
          e.ok === true ? h("b", {class: "ok"}, " ✓ " + tr("ok")) : e.ok === false ? h("b", {class: "bad"}, " ✗ " + tr("failed")) : null))));
      chart($("#chart"), d.chart, d.first_ts);
      if (d.conditions.length) {
        $("#chart").appendChild(h("ul", {class: "help"}, d.conditions.map((c) =>
          h("li", {}, tr("grade_" + c.grade) + ": ", h("code", {}, c.text)))));
      }
      const duty = $("#duty");
      if (d.duty) {
        const n = d.duty.now;
        const esc = d.escalation;
        put(duty, h("div", {class: "duty", id: "duty-box"},
          h("div", {class: "row"}, h("b", {}, d.duty.team_name), h("small", {}, ` (${d.duty.team}) · ${n.why}`)),
          h("div", {class: "row", "data-role": "A"}, `${tr("role_A")}: `, h("b", {}, personText(n.A))),
          h("div", {class: "row", "data-role": "B"}, `${tr("role_B")}: `, h("b", {}, personText(n.B))),
          h("div", {class: "row"}, `${tr("role_leader")}: ${personText(n.leader)}`),
          h("div", {class: "row"}, h("small", {}, `${when(n.start_ms)} – ${when(n.end_ms)}`)),
          d.duty.next ? h("div", {class: "row"}, h("small", {}, `${tr("duty_next")}: A ${personText(d.duty.next.A)} · B ${personText(d.duty.next.B)} · ${when(d.duty.next.start_ms)}`)) : null,
          h("div", {id: "esc", class: "esc " + (esc.running ? "running" : "stopped")},
            `${tr("escalation")}: `,
            esc.running ? `${tr("esc_next")} ${esc.roles.map((r) => tr("role_" + r)).join("+")} @ ${when(esc.next_ms)}`
                        : (d.acked_by ? `${tr("esc_stopped")} — ${tr("acked_by")} ${d.acked_name}` : tr("esc_stopped")))));
      } else put(duty, h("p", {class: "help"}, tr("no_roster")));
      plan($("#plan"), d.plan_view);
      events(d.events || []);
    }
    // camera detections and industrial events behind the warning (yujing.events)
    function events(list) {
      $("#events-box").hidden = !list.length;
      put($("#events"), ...list.map((ev) => h("div", {class: "event", "data-type": ev.type},
        h("div", {class: "row"}, h("b", {}, tr("ev_" + ev.type)), " · ", when(ev.ts),
          ev.confidence !== undefined ? ` · ${tr("confidence")} ${num(ev.confidence)}` : null,
          ev.id ? h("small", {}, ` · ${tr("event_id")} ${ev.id}`) : null),
        ev.image_url ? h("div", {class: "row"}, h("a", {class: "image", href: ev.image_url,
          target: "_blank", rel: "noopener noreferrer"}, tr("image") + " ↗")) : null,
        ev.bbox ? h("div", {class: "row bbox"}, boxSketch(ev.bbox),
          h("span", {}, `${tr("bbox")} [${ev.bbox.map(num).join(", ")}]`)) : null,
        ev.detail ? h("table", {class: "kv detail"}, h("tbody", {}, Object.entries(ev.detail).map(([k, v]) =>
          h("tr", {}, h("td", {}, k), h("td", {}, typeof v === "object" ? JSON.stringify(v) : String(v)))))) : null)));
    }
    // where in the frame: a box given as fractions of the frame is drawn to scale
    function boxSketch(b) {
      const frac = b.every((x) => x <= 1);
      const [x, y, w, hh] = frac ? b : [0, 0, 1, 1];
      return h("svg:svg", {viewBox: "0 0 160 90", width: 96, height: 54, class: "frame", role: "img",
        "aria-label": tr("bbox")},
        h("svg:rect", {x: 0.5, y: 0.5, width: 159, height: 89, class: "fr"}),
        frac ? h("svg:rect", {x: x * 160, y: y * 90, width: w * 160, height: hh * 90, class: "bx"}) : null);
    }
    function setMsg(text, err) {
      const m = $("#act-msg"); m.textContent = text; m.className = "msg" + (err ? " err" : "");
    }
    function wire(id, action, build) {
      document.getElementById(id).addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const form = ev.target, data = Object.fromEntries(new FormData(form));
        const [url, body] = build(data);
        const r = await post(url, body);
        if (r.status === 202) { setMsg(`${tr(action)} — ${tr("sent")}`, false); form.reset(); }
        else setMsg(`${r.status}: ${r.data.error || ""}`, true);
      });
    }
    const base = "/v1/warnings/" + encodeURIComponent(iid);
    wire("f-ack", "ack", (d) => [base + "/ack", {note: d.note || ""}]);
    wire("f-note", "note", (d) => [base + "/note", {text: d.text}]);
    wire("f-clear", "clear", (d) => [base + "/clear", {reason: d.reason}]);
    wire("f-report", "report_back", (d) => [base + "/reports", {status: d.status, measures: d.measures,
      evacuated: Number(d.evacuated || 0), withdrawn: Number(d.withdrawn || 0),
      stopped: d.stopped === "" ? null : d.stopped === "yes",
      photos: (d.photos || "").split("\n").map((u) => u.trim()).filter(Boolean), text: d.text || ""}]);
    wire("f-silence", "silence", (d) => ["/v1/silences", {incident: iid, duration: d.duration, reason: d.reason}]);
    // refetch when this incident changes (coalesced: a burst of snapshots is one fetch)
    const again = () => {
      if (timer) { pending = true; return; }
      load().finally(() => { timer = setTimeout(() => { timer = null; if (pending) { pending = false; again(); } }, 150); });
    };
    live({incident: (w) => { if (w.incident === iid) again(); }}, again);
  }

  // --- station -------------------------------------------------------------------------------------
  function station() {
    const sid = YJ.station;
    async function load() {
      const d = await getJSON(P + "/api/stations/" + encodeURIComponent(sid));
      if (d.error) { put($("#s-head"), h("p", {class: "empty"}, d.error)); return; }
      const worst = d.warnings.filter((w) => OPEN[w.state]).reduce((g, w) => Math.max(g, w.grade), 0);
      put($("#s-head"), badge(worst), h("h1", {}, d.name),
        h("div", {class: "meta"}, `${d.id} · ${d.kind} · ${d.town} · ${d.lat ?? "?"}, ${d.lon ?? "?"}` +
          (d.expected_interval ? ` · ${d.expected_interval}` : "")));
      put($("#s-warnings tbody"), ...d.warnings.map((w) => h("tr", {"data-incident": w.incident,
          on: {click: () => { location.href = P + "/warnings/" + encodeURIComponent(w.incident); }}},
        h("td", {}, badge(w.grade)), h("td", {}, h("a", {href: P + "/warnings/" + encodeURIComponent(w.incident)}, w.rule_name)),
        h("td", {}, stateChip(w.state)), h("td", {}, when(w.raised_ms || w.updated_ms)), h("td", {class: "reason"}, reasonOf(w)))));
      put($("#s-latest tbody"), ...d.latest.map((r) => h("tr", {},
        h("td", {}, r.metric), h("td", {}, num(r.value)), h("td", {}, when(r.ts)))),
      );
      put($("#s-thresholds tbody"), Object.entries(d.thresholds).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, num(v)))));
      plan($("#plan"), d.plan_view);
      put($("#s-contacts"), ...d.contacts.map((c) => h("li", {}, `${c.name} ${c.phone} ${c.role ? "(" + c.role + ")" : ""}`)));
      chart($("#chart"), d.chart, null);
    }
    live({incident: (w) => { if (w.station === sid) load(); }}, load);
  }

  // --- health -------------------------------------------------------------------------------------
  function health() {
    const table = (head, rows) => h("table", {}, h("thead", {}, h("tr", {}, head.map((x) => h("th", {}, x)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((x) => h("td", {}, x))))));
    async function load() {
      const d = await getJSON(P + "/api/health");
      const wd = d.gateway.watchdog, L = YJ.lang === "en" ? "en" : "zh";
      put($("#h-faults"), !wd ? h("p", {class: "help"}, tr("wd_off"))
        : !wd.reachable ? h("p", {class: "warn"}, wd.error)
        : !wd.faults.length ? h("p", {}, tr("wd_ok"))
        : table([tr("what"), tr("time"), tr("why"), tr("todo")], wd.faults.map((f) =>
            [h("b", {class: "warn"}, f.what[L]), when(f.since_ms), f.why[L], f.todo[L]])));
      const rates = Object.entries(d.rates);
      const total = rates.reduce((s, [, v]) => s + v, 0);
      put($("#h-ingest"), h("div", {class: "bignum", id: "h-rate"}, num(total) + " /s"),
        table([tr("source"), "10 s", "60 s"],
          rates.map(([k, v]) => [k, num(v), num(d.rates_60[k] || 0)])),
        table([tr("accepted"), tr("rejected"), "MQTT", tr("uptime")],
          [[String(d.gateway.accepted ?? "—"), String(d.gateway.rejected ?? "—"),
            d.gateway.mqtt_connected ? tr("yes") : tr("no"), `${Math.round(d.gateway.uptime_s || 0)} s`]]));
      const pts = d.series.slice(-90);
      if (pts.length > 1) {
        const W = 320, H = 60, max = Math.max(1, ...pts.map((p) => p[1]));
        const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
        put($("#h-spark"), h("svg:svg", {viewBox: `0 0 ${W} ${H}`, width: W, height: H},
          h("svg:polyline", {class: "spark", points: pts.map((p) =>
            `${((p[0] - t0) / (t1 - t0 || 1) * W).toFixed(1)},${(H - 2 - p[1] / max * (H - 6)).toFixed(1)}`).join(" ")})));
      }
      const workers = d.scraped.filter((s) => s.what === "worker" || s.lag);
      put($("#h-lag"), workers.length ? h("div", {}, ...workers.map((s) => s.ok
        ? h("div", {}, h("small", {}, s.url),
            table([tr("partition"), tr("lag")], (s.lag || []).map(([p, v]) => [p, String(v)])),
            h("p", {}, `${tr("worker_rate")}: ${s.worker_rate !== undefined ? num(s.worker_rate) + " /s" : "…"}`,
              s.notifications ? ` · ${tr("notifications")}: ` + Object.entries(s.notifications).map(([k, v]) => `${k} ${v}`).join(", ") : ""))
        : h("p", {class: "warn"}, `${s.url}: ${s.error}`))) : h("p", {class: "help"}, tr("not_scraped")));
      const sinks = d.scraped.filter((s) => s.what === "sink" || s.sink_written !== undefined);
      put($("#h-backlog"), sinks.length ? h("div", {}, ...sinks.map((s) => s.ok
        ? h("div", {}, h("div", {class: "bignum"}, String(s.backlog ?? "—")), h("small", {}, `${s.url} · written ${s.sink_written ?? "—"} · dropped ${s.sink_dropped ?? 0}`))
        : h("p", {class: "warn"}, `${s.url}: ${s.error}`))) : h("p", {class: "help"}, tr("not_scraped")));
      put($("#h-console"), table([tr("kind"), ""], [
        [tr("kafka_incidents"), `${d.incidents.count} · ${d.incidents.caught_up ? "✓" : "…"} · ${when(d.incidents.last_ms)}`],
        [tr("window"), `${d.window.readings} ${tr("readings")} / ${d.window.envelopes} env · max ${d.window.max} · ${d.window.keep}`]]));
      put($("#h-dead"), 
        table([tr("code"), tr("count"), tr("reason"), tr("time")],
          d.deadletters.by_reason.map((r) => [r.code, String(r.count), r.reason, when(r.last_ms)])),
        h("h2", {}, tr("latest_samples")),
        table([tr("time"), tr("source"), tr("code"), tr("reason"), "raw"],
          d.deadletters.latest.map((x) => [when(x.received_ms), x.source || "", x.code || "", x.reason || "",
            h("code", {class: "raw"}, (x.raw || "").slice(0, 160))])));
    }
    load();
    setInterval(load, 3000);
  }

  // --- storm view (暴雨专题) -------------------------------------------------------------------
  function stormView() {
    let timer = null, again = false, hazards = [];
    const amount = (r, w) => h("td", {"data-label": tr("rain_" + w), class: "amt g" + r.grades[w]
        + (w === "24h" && r.rainstorm_day ? " day" : "") + (r.partial[w] ? " partial" : ""),
        "data-grade": r.grades[w], title: r.partial[w] ? tr("partial") : null},
      r.sums[w] === null ? "—" : num(r.sums[w]) + (r.partial[w] ? "*" : ""));
    async function load() {
      const d = await getJSON(P + "/api/storm");
      hazards = d.hazards;
      $("#as-of").textContent = `${tr("as_of")} ${when(d.as_of)}`;
      put($("#bands"), `${tr("bands")}: `, d.bands.map((b) => h("span", {class: "band"}, badge(b.grade),
        ` ${b.window} ${OPS[b.op] || b.op} ${num(b.value)} ${tr("mm")} `)),
        h("span", {class: "band day"}, `24h ≥ ${num(d.rainstorm_day_mm)} ${tr("mm")}: ${tr("rainstorm_day")}`),
        h("span", {}, ` · * ${tr("partial")}`));
      put($("#rain tbody"), ...d.rain.map((r) => h("tr", {"data-station": r.station, "data-grade": r.grade,
          on: {click: () => { location.href = P + "/stations/" + encodeURIComponent(r.station); }}},
        h("td", {"data-label": tr("rank"), class: "c-rank"}, String(r.rank)),
        h("td", {"data-label": tr("station"), class: "c-station"}, h("a", {class: "name", href: P + "/stations/" + encodeURIComponent(r.station)}, r.name),
          h("br"), h("small", {}, r.station)),
        h("td", {"data-label": tr("town")}, r.town),
        amount(r, "1h"), amount(r, "3h"), amount(r, "24h"),
        h("td", {"data-label": tr("last_report")}, r.last_ts ? when(r.last_ts) : tr("no_data")))));
      const ws = sortWarnings(d.warnings);
      $("#sw-n").textContent = ws.length;
      $("#sw-empty").hidden = ws.length > 0;
      put($("#storm-warnings"), ...ws.map((w) => h("li", {class: "card st-" + w.state, "data-incident": w.incident},
        h("div", {}, badge(w.grade), " ", stateChip(w.state), " ",
          h("a", {class: "name", href: P + "/warnings/" + encodeURIComponent(w.incident)}, `${w.rule_name} · ${w.station_name}`)),
        h("small", {}, `${w.town} · ${when(w.raised_ms || w.updated_ms)}`),
        h("div", {class: "reason"}, reasonOf(w)))));
      put($("#points"), ...d.points.map((pt) => {
        const box = h("div", {class: "plan"});
        plan(box, pt.plan);
        return h("li", {class: "card", "data-station": pt.station, "data-grade": pt.grade},
          h("div", {}, badge(pt.grade), " ", h("a", {class: "name", href: P + "/stations/" + encodeURIComponent(pt.station)}, pt.name),
            h("small", {}, " " + pt.town)),
          h("div", {class: "depth"}, `${tr("depth")}: `, h("b", {}, pt.depth === null ? tr("no_data")
            : `${num(pt.depth)} ${tr("metre")}`), pt.ts ? h("small", {}, ` · ${when(pt.ts)}`) : null),
          h("div", {}, h("small", {}, pt.bands.map((b) => `${tr("grade_" + b.grade)} ${OPS[b.op] || b.op} ${num(b.value)} ${tr("metre")}`).join(" · "))),
          box);
      }));
    }
    const refresh = () => {   // coalesced: a burst of snapshots is one fetch
      if (timer) { again = true; return; }
      load().finally(() => { timer = setTimeout(() => { timer = null; if (again) { again = false; refresh(); } }, 300); });
    };
    live({incident: (w) => { if (!hazards.length || hazards.includes(w.hazard)) refresh(); }}, refresh);
    setInterval(refresh, 5000);   // rain sums move with every reading, not only with warnings
  }

  menu();
  const pages = {board, storm: stormView, map: stationMap, warning: detail, station, health};
  if (pages[YJ.page]) pages[YJ.page]();
})();
