"use strict";
// The dashboard's one script: reads /dashboard/data.json every few seconds
// and shows it. Every number sits in an element whose data-v attribute
// names it; when a refresh brings the same set of names, only the numbers
// change in place; otherwise the page is built again.
(function () {
  const main = document.getElementById("main");
  const updated = document.getElementById("updated");
  const problem = document.getElementById("error");
  let every = Number(main.dataset.refresh) || 10;
  let refreshes = 0;

  const STEPS = { enrolled: "Enrolled", invited: "Invited", delivered: "Delivered", opened: "Opened",
    clicked: "Clicked", started: "Started", completed: "Completed" };
  const VERDICTS = { better: "better", worse: "worse", no_difference: "no difference",
    not_enough_data: "not enough data" };

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, val] of Object.entries(attrs || {})) {
      if (k === "class") { e.className = val; } else { e.setAttribute(k, val); }
    }
    for (const kid of kids) {
      if (kid !== null && kid !== undefined) { e.append(kid); }
    }
    return e;
  }
  // A figure, named so that a refresh can find it.
  function v(key, text, cls) {
    const attrs = { "data-v": key };
    if (cls) { attrs.class = cls; }
    return el("span", attrs, String(text));
  }
  function bar(key, fraction) {
    const width = (Math.max(0, Math.min(1, fraction || 0)) * 100).toFixed(1) + "%";
    const b = el("span", { class: "bar", "data-w": key, "data-width": width });
    b.style.width = width;
    return el("span", { class: "track" }, b);
  }
  function num(x) { return x === null || x === undefined ? "–" : String(x); }
  function pct(x) { return x === null || x === undefined ? "–" : (x * 100).toFixed(1) + "%"; }
  function points(x) {
    if (x === null || x === undefined) { return "–"; }
    const p = x * 100;
    return (p > 0 ? "+" : "") + p.toFixed(1);
  }
  function interval(pair, f) { return pair ? f(pair[0]) + " to " + f(pair[1]) : "–"; }
  function duration(s) {
    if (s === null || s === undefined) { return "–"; }
    if (s >= 86400) { return (s / 86400).toFixed(1) + " d"; }
    if (s >= 3600) { return (s / 3600).toFixed(1) + " h"; }
    return Math.round(s / 60) + " min";
  }
  function clock(d) {
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
  }
  function row(cells) {
    return el("tr", null, ...cells.map((c) => (c instanceof Element && c.tagName === "TD") ? c : el("td", null, c)));
  }
  function n(content) { return el("td", { class: "n" }, content); }
  function head(...names) {
    return el("thead", null, el("tr", null, ...names.map((h, i) => el("th", i ? { class: "n" } : null, h))));
  }
  function card(title, wide, ...kids) {
    return el("div", { class: wide ? "card wide" : "card" }, el("h3", null, title), ...kids);
  }
  function tiles(entries) {
    return el("div", { class: "tiles" }, ...entries.map(([label, node]) =>
      el("div", { class: "tile" }, el("b", null, node), el("span", { class: "label" }, label))));
  }

  function sendsCard(key, sends) {
    return tiles(Object.entries(sends).map(([channel, count]) => [channel, v(key + "|" + channel, count)]));
  }

  function statusCard(c, status) {
    if (!status) { return card("Candidates now", false, el("p", { class: "muted" }, "not loaded")); }
    const body = el("tbody", null,
      ...status.states.map(([state, count]) => row([state, n(v(c + "|state|" + state, count))])));
    const outcomes = el("tbody", null,
      ...status.outcomes.map(([outcome, count]) => row(["left: " + outcome, n(v(c + "|left|" + outcome, count))])),
      row(["sends held", n(v(c + "|held", status.held))]),
      row(["sends due next hour", n(v(c + "|next_hour", status.sends_next_hour))]),
      row(["sends due next day", n(v(c + "|next_day", status.sends_next_day))]),
      row(["sends failed", n(v(c + "|failed_sends", status.failed))]),
      row(["sends skipped late", n(v(c + "|late", status.late))]));
    return card("Candidates now", false, el("table", null, head("state", "candidates"), body, outcomes));
  }

  function funnelCard(c, funnel) {
    const top = funnel.length ? funnel[0].count : 0;
    const body = el("tbody", null, ...funnel.map((s) => {
      const k = c + "|funnel|" + s.step;
      return row([STEPS[s.step] || s.step, el("td", null, bar(k, top ? s.count / top : 0)),
        n(v(k + "|count", s.count)), n(v(k + "|from_previous", pct(s.rate_from_previous))),
        n(v(k + "|from_enrolled", pct(s.rate_from_enrolled)))]);
    }));
    return card("Funnel", true, el("table", null, head("step", "", "count", "of previous", "of enrolled"), body));
  }

  function outcomesCard(c, o, t) {
    const rows = [
      ["opted out", v(c + "|outcomes|opted_out", o.opted_out)],
      ["bounced", v(c + "|outcomes|bounced", o.bounced)],
      ["failed", v(c + "|outcomes|failed", o.failed)],
      ["running", v(c + "|outcomes|running", o.running)],
      ...Object.entries(o.exited).map(([state, count]) => ["ended in " + state, v(c + "|outcomes|exited|" + state, count)]),
    ];
    const ttc = [
      ["completed after an invite", v(c + "|ttc|count", t.count)],
      ["median", v(c + "|ttc|median", duration(t.median_s))],
      ["90th percentile", v(c + "|ttc|p90", duration(t.p90_s))],
      ["within 24 h of invited", v(c + "|ttc|24h", pct(t.within_24h))],
      ["within 48 h", v(c + "|ttc|48h", pct(t.within_48h))],
      ["within 72 h", v(c + "|ttc|72h", pct(t.within_72h))],
    ];
    return [
      card("Outcomes", false, el("table", null, el("tbody", null, ...rows.map(([a, b]) => row([a, n(b)]))))),
      card("Time to completion", false, el("table", null, el("tbody", null, ...ttc.map(([a, b]) => row([a, n(b)]))))),
    ];
  }

  function experimentsCard(c, experiments) {
    if (!experiments.length) { return null; }
    const parts = [];
    for (const e of experiments) {
      const k = c + "|exp|" + e.name;
      parts.push(el("h4", null, "Experiment " + e.name));
      if (e.decided) {
        parts.push(el("p", { class: "decided" }, "Decided: ", v(k + "|winner", e.decided.winner),
          " since " + e.decided.at + ". " + e.decided.because));
      }
      const top = Math.max(0, ...e.variants.map((x) => x.rate || 0));
      parts.push(el("table", null, head("variant", "", "enrolled", "completed", "rate", "95% interval"),
        el("tbody", null, ...e.variants.map((x) => row([
          x.name, el("td", null, bar(k + "|" + x.name, top ? (x.rate || 0) / top : 0)),
          n(v(k + "|" + x.name + "|n", x.n)), n(v(k + "|" + x.name + "|completed", x.completed)),
          n(v(k + "|" + x.name + "|rate", pct(x.rate))),
          n(v(k + "|" + x.name + "|interval", interval(x.interval, pct)))])))));
      for (const cmp of e.comparisons) {
        const ck = k + "|vs|" + cmp.variant;
        parts.push(el("p", null,
          v(ck + "|verdict", VERDICTS[cmp.verdict] || cmp.verdict, "badge " + cmp.verdict), " ",
          el("strong", null, cmp.variant), " against " + cmp.versus + ": ",
          v(ck + "|text", cmp.text), el("br"),
          el("span", { class: "muted" }, "difference ", v(ck + "|difference", points(cmp.difference)),
            " points; always-valid interval ", v(ck + "|always_valid", interval(cmp.always_valid_interval, points)),
            "; p = ", v(ck + "|p", cmp.p_value === null ? "–" : cmp.p_value.toFixed(3)))));
      }
      const extra = [];
      if (e.chi_square) {
        extra.push("all variants: chi-square ", v(k + "|chi", e.chi_square.statistic.toFixed(2)),
          ", p = ", v(k + "|chi_p", e.chi_square.p_value.toFixed(3)), ". ");
      }
      extra.push("sample needed per variant: ", v(k + "|sample_needed", num(e.sample_needed)));
      parts.push(el("p", { class: "muted" }, ...extra));
    }
    return card("Experiments", true, ...parts);
  }

  function flagsCard(c, flags) {
    if (!flags.length) {
      return card("Red flags", true, el("p", { class: "muted", "data-v": c + "|flags" }, "none"));
    }
    return card("Red flags", true, el("ul", { class: "flags" }, ...flags.map((f) => {
      const k = c + "|flag|" + f.kind + (f.channel ? "|" + f.channel : "");
      return el("li", null, v(k, f.kind.replace(/_/g, " ") + (f.channel ? " (" + f.channel + ")" : ""), "badge flag"), " ",
        v(k + "|value", pct(f.value)), " against " + pct(f.threshold) + ", of ", v(k + "|base", f.base), ". ",
        el("span", { class: "muted" }, f.advice));
    })));
  }

  function build(data) {
    const out = document.createDocumentFragment();
    const statusOf = {};
    for (const s of data.status.campaigns) { statusOf[s.name] = s; }
    if (data.status.store_trouble) {
      out.append(el("p", { class: "decided trouble" }, "The store cannot be written now: " + data.status.store_trouble));
    }
    const since = new Date(data.sends_today.since);
    out.append(el("h2", null, "Sent today", el("small", null,
      "since " + clock(since).slice(0, 5) + " your time (the day in " + data.sends_today.zone + ")")),
    el("div", { class: "card" }, sendsCard("sends", data.sends_today.total)));
    for (const c of data.report.campaigns) {
      const status = statusOf[c.campaign];
      const title = el("h2", null, c.title || c.campaign, el("small", null, c.campaign));
      if (status && status.paused) { title.append(" ", el("span", { class: "badge paused" }, "paused")); }
      const sends = data.sends_today.campaigns[c.campaign] || {};
      out.append(el("section", { "data-campaign": c.campaign }, title, el("div", { class: "grid" },
        statusCard(c.campaign, status),
        card("Sent today", false, sendsCard(c.campaign + "|sends", sends)),
        funnelCard(c.campaign, c.funnel),
        ...outcomesCard(c.campaign, c.outcomes, c.time_to_completion),
        experimentsCard(c.campaign, c.experiments),
        flagsCard(c.campaign, c.red_flags))));
    }
    if (!data.report.campaigns.length) {
      out.append(el("p", { class: "muted" }, "No campaigns are loaded."));
    }
    return out;
  }

  function names(root) {
    return Array.from(root.querySelectorAll("[data-v],[data-w]"), (e) => (e.dataset.v ? "v" + e.dataset.v : "w" + e.dataset.w)).join("\n");
  }

  function show(data) {
    const fresh = el("div");
    fresh.append(build(data));
    if (names(fresh) === names(main)) {
      const live = {};
      for (const e of main.querySelectorAll("[data-v],[data-w]")) { live[e.dataset.v ? "v" + e.dataset.v : "w" + e.dataset.w] = e; }
      for (const e of fresh.querySelectorAll("[data-v]")) {
        const old = live["v" + e.dataset.v];
        if (old.textContent !== e.textContent) { old.textContent = e.textContent; }
        if (old.className !== e.className) { old.className = e.className; }
      }
      for (const e of fresh.querySelectorAll("[data-w]")) {
        const old = live["w" + e.dataset.w];
        if (old.dataset.width !== e.dataset.width) {
          old.dataset.width = e.dataset.width;
          old.style.width = e.dataset.width;
        }
      }
    } else {
      main.replaceChildren(...fresh.childNodes);
    }
  }

  function fail(text) {
    problem.textContent = text;
    problem.hidden = false;
  }

  async function refresh() {
    try {
      const answer = await fetch("/dashboard/data.json", { credentials: "same-origin", cache: "no-store",
        headers: { Accept: "application/json" } });
      if (answer.status === 401) {
        fail("Your login has ended: log in again at /dashboard/login. The numbers below are from " + updated.textContent + ".");
        return;
      }
      if (!answer.ok) {
        let why = answer.status + " " + answer.statusText;
        try { why = (await answer.json()).message || why; } catch (ignored) { /* not JSON */ }
        throw new Error(why);
      }
      const data = await answer.json();
      show(data);
      every = data.refresh_secs || every;
      refreshes += 1;
      main.dataset.refreshes = String(refreshes);
      updated.textContent = "last updated " + clock(new Date());
      problem.hidden = true;
      problem.textContent = "";
    } catch (e) {
      fail("Refresh failed at " + clock(new Date()) + ": " + e.message + ". The numbers below may be out of date; trying again in " + every + " s.");
    }
    setTimeout(refresh, every * 1000);
  }

  window.addEventListener("error", (e) => fail("The page hit an error: " + e.message));
  document.addEventListener("securitypolicyviolation", (e) => fail("Blocked by the page's security policy: " + e.violatedDirective));
  refresh();
}());
