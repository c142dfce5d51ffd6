// The topsellers page: fetches /v1/categories and /v1/top and draws them.
// Every text from the API goes through textContent, never through markup parsing: item names are
// data supplied by shops and must not be able to inject anything.
"use strict";

(function () {
  const refreshSecs = Math.max(1, Number(document.querySelector('meta[name="topsellers-refresh-secs"]').content) || 5);
  // Results older than this are called stale. A live node republishes at least every 5 s even when
  // nothing changed, so computed_at stays fresh while it runs; 30 s (or 3 page refreshes, if that is
  // longer) means several republications were missed, not a quiet shop.
  const staleAfterMs = Math.max(30000, 3 * refreshSecs * 1000);
  const maxGlanceCards = 24;

  const state = {
    category: "",
    window: null,
    catalogue: null,      // last /v1/categories answer
    lists: new Map(),     // category -> last /v1/top answer for the current window
    errors: new Map(),    // category -> message of its last failed /v1/top request
    lastSuccess: null,    // Date of the last refresh that reached the server
    failing: false,       // the server could not be reached at all
    categoryNotice: null, // why the category in the URL was replaced by the site-wide list
    timer: null,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.has("category")) state.category = params.get("category");
    if (params.has("window")) state.window = params.get("window");
  }

  function writeHash() {
    const params = new URLSearchParams();
    if (state.category) params.set("category", state.category);
    if (state.window) params.set("window", state.window);
    const hash = params.toString();
    history.replaceState(null, "", hash ? "#" + hash : location.pathname);
  }

  // A server that accepts the connection but never answers must not freeze the page in its last state: every
  // request gives up after this long, which the staleness and offline notices then report.
  const REQUEST_TIMEOUT_MS = 10000;

  function timeoutSignal() {
    return typeof AbortSignal !== "undefined" && AbortSignal.timeout
      ? AbortSignal.timeout(REQUEST_TIMEOUT_MS)
      : undefined;
  }

  // `cache: "no-cache"`: the browser may keep answers, but asks the server every time (a 304 when nothing
  // changed, thanks to the ETag), so the page never shows a cached list older than the server's.
  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-cache", signal: timeoutSignal() });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const message = body && body.error && body.error.message ? body.error.message : "HTTP " + response.status;
      const error = new Error(message);
      error.status = response.status;
      error.parameter = body && body.error ? body.error.parameter : undefined;
      throw error;
    }
    return body;
  }

  function label(path) {
    if (!path) return "All categories";
    const last = path.split("/").pop();
    return last
      .split(" ")
      .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
      .join(" ");
  }

  function breadcrumb(path) {
    return path ? path.split("/").map(label).join(" › ") : "Site-wide";
  }

  // The site-wide list, then the top level, then the second level if there is room.
  function glanceCategories(catalogue) {
    const paths = catalogue.categories.map((c) => c.path);
    const top = paths.filter((p) => p !== "" && !p.includes("/"));
    const second = paths.filter((p) => p.split("/").length === 2);
    const chosen = [""].concat(top);
    if (chosen.length + second.length <= maxGlanceCards) chosen.push(...second);
    return chosen.slice(0, maxGlanceCards);
  }

  function drawControls() {
    const catalogue = state.catalogue;
    const select = $("category");
    const known = new Set(catalogue.categories.map((c) => c.path));
    if (!known.has(state.category)) known.add(state.category);
    const wanted = Array.from(known).sort();
    const current = Array.from(select.options).map((o) => o.value);
    if (wanted.join("\n") !== current.join("\n")) {
      select.replaceChildren();
      for (const path of wanted) {
        const depth = path ? path.split("/").length : 0;
        // Indent with non-breaking spaces: options cannot hold markup, and this keeps it text.
        const option = el("option", null, "\u00a0\u00a0".repeat(depth) + label(path));
        option.value = path;
        select.appendChild(option);
      }
    }
    select.value = state.category;

    const buttons = $("windows");
    const names = catalogue.windows.map((w) => w.name);
    if (Array.from(buttons.children).map((b) => b.dataset.window).join() !== names.join()) {
      buttons.replaceChildren();
      for (const name of names) {
        const button = el("button", null, name === "all" ? "All time" : name);
        button.type = "button";
        button.dataset.window = name;
        button.addEventListener("click", () => {
          state.window = name;
          state.lists.clear();
          writeHash();
          refresh();
        });
        buttons.appendChild(button);
      }
    }
    for (const button of buttons.children) {
      button.setAttribute("aria-pressed", String(button.dataset.window === state.window));
    }
  }

  function drawCard(path, answer, big) {
    const error = state.errors.get(path);
    const card = el("article", "card");
    const head = el("div", "card-head");
    const title = el("button", "card-title", label(path));
    title.type = "button";
    title.title = "Show " + breadcrumb(path);
    title.addEventListener("click", () => selectCategory(path));
    head.appendChild(title);
    if (answer && !answer.warming_up && !answer.empty) head.appendChild(el("span", "card-meta", answer.window === "all" ? "all time" : "last " + answer.window));
    card.appendChild(head);
    card.appendChild(el("p", "card-path", breadcrumb(path)));

    // A failed request costs only this card: its last data stays, with a short note.
    if (error) card.appendChild(el("p", "card-error", answer ? "Not updated: " + error : "Could not load: " + error));
    const items = answer && answer.items ? answer.items : [];
    if (!answer) {
      if (!error) card.appendChild(el("p", "empty", "Loading…"));
    } else if (items.length === 0) {
      let text = "No sales in this window.";
      if (answer.warming_up) text = "Warming up: no results yet.";
      else if (answer.empty) text = "No purchases counted yet.";
      card.appendChild(el("p", "empty", text));
    } else {
      const maxUnits = Math.max(1, ...items.map((i) => i.units));
      const list = el("ol", "items");
      for (const item of items) {
        const row = el("li");
        row.appendChild(el("span", "rank", item.rank));
        const name = el("span", "name", item.item_name || item.item_id);
        name.title = (item.item_name ? item.item_name + " · " : "") + item.item_id;
        row.appendChild(name);
        row.appendChild(el("span", "units", Number(item.units).toLocaleString() + " sold"));
        const track = el("div", "track");
        const fill = el("div", "fill");
        fill.style.width = Math.max(1, Math.round((100 * item.units) / maxUnits)) + "%";
        track.appendChild(fill);
        row.appendChild(track);
        if (big) row.appendChild(el("span", "revenue", item.revenue + " " + (answer.currency || "")));
        list.appendChild(row);
      }
      card.appendChild(list);
    }
    return card;
  }

  function drawResults() {
    const focus = $("focus");
    focus.replaceChildren(drawCard(state.category, state.lists.get(state.category), true));
    const grid = $("grid");
    const cards = glanceCategories(state.catalogue)
      .filter((path) => path !== state.category)
      .map((path) => drawCard(path, state.lists.get(path), false));
    grid.replaceChildren(...cards);
  }

  function formatAge(ms) {
    const s = Math.round(ms / 1000);
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    if (s < 172800) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " days";
  }

  function drawStatus() {
    const pill = $("status-pill");
    const notice = $("notice");
    const sample = state.lists.get(state.category);
    const computedAt = sample && sample.computed_at ? new Date(sample.computed_at) : null;
    const asOf = sample && sample.as_of ? new Date(sample.as_of) : null;
    // `as_of` is the end of the current time bucket, which for live data lies up to a bucket in the future: show
    // when the results were computed, and how far the data reaches only when that is clearly in the past
    // (results of a replayed history).
    let asOfText = "";
    if (asOf && computedAt && asOf.getTime() < computedAt.getTime() - 2 * 60 * 1000) {
      asOfText = "data up to " + asOf.toLocaleString() + " · ";
    }
    if (computedAt) asOfText += "updated " + computedAt.toLocaleTimeString();
    $("as-of").textContent = asOfText;

    let pillClass = "pill-live";
    let pillText = "live";
    let message = null;
    let bad = false;
    let kind = "";
    const age = computedAt ? Date.now() - computedAt.getTime() : 0;
    if (state.failing) {
      pillClass = "pill-offline";
      pillText = "offline";
      bad = true;
      kind = "offline";
      message = state.lastSuccess
        ? "Cannot reach the server. Showing the results fetched at " + state.lastSuccess.toLocaleTimeString() + "; retrying every " + refreshSecs + " s."
        : "Cannot reach the server; retrying every " + refreshSecs + " s.";
    } else if (!sample) {
      pillClass = "pill-wait";
      pillText = "loading";
    } else if (sample.warming_up) {
      pillClass = "pill-wait";
      pillText = "warming up";
      message = "No results yet: the aggregator has not published its first snapshot.";
    } else if (sample.empty) {
      pillClass = "pill-wait";
      pillText = "no data yet";
      message = "The server is up but has not counted any purchases yet.";
    } else if (sample.stale || (state.catalogue && state.catalogue.stale)) {
      // The server says so: it cannot read its results store, and serves the last results it has.
      const seconds = Math.max(Number(sample.stale_seconds) || 0, Number(state.catalogue && state.catalogue.stale_seconds) || 0);
      pillClass = "pill-stale";
      pillText = "stale";
      kind = "stale";
      message = "Results are " + formatAge(seconds * 1000) + " old: the results store cannot be reached, so these are the last results the server has. They update by themselves once it is back.";
    } else if (age > staleAfterMs) {
      pillClass = "pill-stale";
      pillText = "stale";
      kind = "stale";
      message = "Results are " + formatAge(age) + " old; the server has not refreshed them. The lists stay as they were last computed.";
    }
    if (state.categoryNotice) message = message ? state.categoryNotice + " " + message : state.categoryNotice;
    pill.className = "pill " + pillClass;
    pill.textContent = pillText;
    notice.hidden = message === null;
    notice.textContent = message || "";
    notice.classList.toggle("notice-bad", bad);
    notice.dataset.kind = kind;
  }

  function selectCategory(path) {
    state.category = path;
    state.categoryNotice = null;
    writeHash();
    drawControls();
    drawResults();
    refresh();
    window.scrollTo({ top: 0, behavior: "smooth" });
  }

  function topUrl(path) {
    const params = new URLSearchParams({ category: path, n: "10" });
    if (state.window) params.set("window", state.window);
    return "/v1/top?" + params.toString();
  }

  // One round: the catalogue, then every shown list on its own. Only a failing catalogue (or every
  // list failing without an answer) means the server is unreachable; one failing list costs only
  // its card, which keeps its last data and says why it is not updated.
  async function refresh() {
    clearTimeout(state.timer);
    try {
      const catalogue = await getJson("/v1/categories");
      state.catalogue = catalogue;
      const windows = catalogue.windows.map((w) => w.name);
      if (!state.window || (windows.length && !windows.includes(state.window))) {
        state.window = catalogue.default_window || windows[0] || null;
      }
      drawControls();
      let paths = [state.category].concat(glanceCategories(catalogue).filter((p) => p !== state.category));
      let outcomes = await Promise.allSettled(paths.map((path) => getJson(topUrl(path))));
      const focus = outcomes[0];
      if (state.category !== "" && focus.status === "rejected" && focus.reason.status === 400 && focus.reason.parameter === "category") {
        // A bad category in the URL (a mistyped or mangled link): show the site-wide list instead.
        state.categoryNotice = "“" + state.category + "” is not a valid category; showing all categories instead.";
        state.errors.delete(state.category);
        state.category = "";
        writeHash();
        drawControls();
        const rest = paths.slice(1);
        const kept = outcomes.slice(1);
        if (!rest.includes("")) {
          rest.unshift("");
          kept.unshift((await Promise.allSettled([getJson(topUrl(""))]))[0]);
        }
        paths = rest;
        outcomes = kept;
      }
      paths.forEach((path, i) => {
        const outcome = outcomes[i];
        if (outcome.status === "fulfilled") {
          state.lists.set(path, outcome.value);
          state.errors.delete(path);
        } else {
          state.errors.set(path, outcome.reason.message);
          console.warn("list " + JSON.stringify(path) + " failed:", outcome.reason.message);
        }
      });
      // Answers without any HTTP status (network errors) for every list: the server is gone.
      state.failing = outcomes.length > 0 && outcomes.every((o) => o.status === "rejected" && o.reason.status === undefined);
      if (!state.failing) state.lastSuccess = new Date();
    } catch (error) {
      // Keep whatever was shown: stale results beat an empty page.
      state.failing = true;
      console.warn("refresh failed:", error.message);
    }
    if (state.catalogue) drawResults();
    drawStatus();
    state.timer = setTimeout(refresh, refreshSecs * 1000);
  }

  function start() {
    readHash();
    $("category").addEventListener("change", (event) => selectCategory(event.target.value));
    window.addEventListener("hashchange", () => {
      state.categoryNotice = null;
      readHash();
      refresh();
    });
    drawStatus();
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
