// Runs assets/app.js against a tiny fake DOM and a scripted fetch, and checks how the page reacts
// to failures. Run by tests/page.rs with `node`; exits non-zero on the first failed check.
"use strict";

const fs = require("fs");
const path = require("path");
const vm = require("vm");
const assert = require("assert");

const APP_JS = fs.readFileSync(path.join(__dirname, "..", "..", "assets", "app.js"), "utf8");

class Node {
  constructor(tag) {
    this.tag = tag;
    this.children = [];
    this.className = "";
    this.textContent = "";
    this.hidden = false;
    this.dataset = {};
    this.style = {};
    this.attributes = {};
    this.value = "";
    this.listeners = {};
    const node = this;
    this.classList = {
      toggle(name, on) {
        const names = new Set(node.className.split(" ").filter(Boolean));
        if (on) names.add(name);
        else names.delete(name);
        node.className = Array.from(names).join(" ");
      },
      contains: (name) => node.className.split(" ").includes(name),
    };
  }
  get options() { return this.children; }
  appendChild(child) { this.children.push(child); return child; }
  replaceChildren(...children) { this.children = children; }
  setAttribute(name, value) { this.attributes[name] = value; }
  addEventListener(type, f) { this.listeners[type] = f; }
  // Text of this node and everything below it.
  text() { return [this.textContent].concat(this.children.map((c) => c.text())).join(" "); }
  find(className) {
    const found = [];
    const walk = (n) => { if (n.className.split(" ").includes(className)) found.push(n); n.children.forEach(walk); };
    walk(this);
    return found;
  }
}

function snapshotAnswer(category, computedAt, extra) {
  return Object.assign({
    category, window: "1h", n: 10, currency: "GBP",
    window_start: "2024-05-01T11:00:00Z", window_end: "2024-05-01T12:00:00Z",
    as_of: "2024-05-01T12:00:00Z", computed_at: computedAt, version: 1,
    items: [{ rank: 1, item_id: (category || "site") + "-1", item_name: "item of " + (category || "site"), units: 5, revenue: "1.00", revenue_minor: 100 }],
  }, extra || {});
}

const CATALOGUE = {
  categories: [{ path: "", parent: null, depth: 0 }, { path: "books", parent: "", depth: 1 }, { path: "toys", parent: "", depth: 1 }],
  windows: [{ name: "1h", length_secs: 3600 }], default_window: "1h", top_k: 50, currency: "GBP",
  as_of: "2024-05-01T12:00:00Z", computed_at: null, version: 1,
};

// Loads the page with `hash`; `server(url)` answers each fetch with {status, body} or throws
// (a network error). Returns helpers to inspect the page and run the next refresh.
async function page(hash, server) {
  const ids = {};
  for (const id of ["category", "windows", "focus", "grid", "status-pill", "as-of", "notice"]) ids[id] = new Node(id);
  const location = { hash, pathname: "/" };
  let timer = null;
  const fetches = [];
  const context = {
    document: {
      readyState: "complete",
      querySelector: () => ({ content: "5" }),
      getElementById: (id) => ids[id],
      createElement: (tag) => new Node(tag),
      addEventListener() {},
    },
    location,
    history: { replaceState(_s, _t, url) { location.hash = url.startsWith("#") ? url : ""; } },
    window: { addEventListener() {}, scrollTo() {} },
    fetch: async (url) => {
      fetches.push(url);
      const answer = server(url);
      return { ok: answer.status < 400, status: answer.status, json: async () => answer.body };
    },
    setTimeout: (f) => { timer = f; return 1; },
    clearTimeout() {},
    console: { warn() {}, log: console.log },
    URLSearchParams, Date, Math, Number, String, Array, Set, Map, JSON, Promise, Error,
  };
  vm.createContext(context);
  vm.runInContext(APP_JS, context);
  const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
  await settle();
  return {
    ids, location, fetches,
    pill: () => ids["status-pill"].textContent,
    notice: () => ids.notice,
    focusText: () => ids.focus.text(),
    card: (title) => ids.grid.children.find((c) => c.children[0].children[0].textContent === title),
    async refreshAgain() { const f = timer; timer = null; f(); await settle(); },
  };
}

const fresh = () => new Date(Date.now() - 2000).toISOString();

function okServer(computedAt, overrides) {
  return (url) => {
    if (overrides) { const answer = overrides(url); if (answer) return answer; }
    if (url === "/v1/categories") return { status: 200, body: CATALOGUE };
    const category = new URLSearchParams(url.split("?")[1]).get("category");
    return { status: 200, body: snapshotAnswer(category, computedAt) };
  };
}

const checks = {
  // Regression: one failed /v1/top (a bad category in the hash) made the whole page "offline".
  async badCategoryInHashFallsBackToSiteWide() {
    const p = await page("#category=%01bad", okServer(fresh(), (url) =>
      url.includes("category=%01bad")
        ? { status: 400, body: { error: { kind: "bad_request", parameter: "category", message: "category is not valid: control character" } } }
        : null));
    assert.strictEqual(p.pill(), "live");
    assert.ok(!p.notice().hidden, "a notice explains the fallback");
    assert.ok(!p.notice().classList.contains("notice-bad"), "no red banner");
    assert.match(p.notice().textContent, /not a valid category; showing all categories/);
    assert.doesNotMatch(p.notice().textContent, /Cannot reach/);
    assert.match(p.focusText(), /item of site/);
    assert.doesNotMatch(p.focusText(), /Loading/);
    assert.match(p.card("Books").text(), /item of books/);
    assert.doesNotMatch(p.location.hash, /category/, "the bad category leaves the URL");
  },

  async oneFailingCardKeepsItsDataAndTheOthersUpdate() {
    let failBooks = false;
    const p = await page("", okServer(fresh(), (url) =>
      failBooks && url.includes("category=books") ? { status: 500, body: { error: { kind: "internal", message: "boom" } } } : null));
    assert.match(p.card("Books").text(), /item of books/);
    failBooks = true;
    await p.refreshAgain();
    const books = p.card("Books");
    assert.match(books.text(), /item of books/, "last data stays");
    assert.strictEqual(books.find("card-error").length, 1);
    assert.match(books.find("card-error")[0].textContent, /boom/);
    assert.strictEqual(p.card("Toys").find("card-error").length, 0);
    assert.strictEqual(p.pill(), "live");
    assert.ok(p.notice().hidden, "no banner for one card");
    failBooks = false;
    await p.refreshAgain();
    assert.strictEqual(p.card("Books").find("card-error").length, 0, "the error clears");
  },

  async aCardThatNeverLoadedSaysWhyInsteadOfLoading() {
    const p = await page("", okServer(fresh(), (url) =>
      url.includes("category=toys") ? { status: 503, body: { error: { kind: "unavailable", message: "busy" } } } : null));
    const toys = p.card("Toys").text();
    assert.match(toys, /Could not load: busy/);
    assert.doesNotMatch(toys, /Loading/);
    assert.strictEqual(p.pill(), "live");
  },

  async unreachableServerShowsTheBanner() {
    let down = false;
    const p = await page("", okServer(fresh(), () => { if (down) throw new TypeError("Failed to fetch"); return null; }));
    assert.strictEqual(p.pill(), "live");
    down = true;
    await p.refreshAgain();
    assert.strictEqual(p.pill(), "offline");
    assert.ok(p.notice().classList.contains("notice-bad"));
    assert.match(p.notice().textContent, /Cannot reach the server/);
    assert.match(p.focusText(), /item of site/, "the last results stay");
  },

  async staleAfterThirtySecondsWithHonestText() {
    const young = await page("", okServer(new Date(Date.now() - 20000).toISOString()));
    assert.strictEqual(young.pill(), "live", "20 s is within four 5 s republications");
    const old = await page("", okServer(new Date(Date.now() - 45000).toISOString()));
    assert.strictEqual(old.pill(), "stale");
    assert.match(old.notice().textContent, /Results are 45 s old; the server has not refreshed them/);
    assert.doesNotMatch(old.notice().textContent, /not being counted/);
  },

  async staleFlagFromTheApiShowsTheStoreBanner() {
    let stale = false;
    const p = await page("", okServer(fresh(), (url) => {
      if (!stale) return null;
      if (url === "/v1/categories") return { status: 200, body: Object.assign({}, CATALOGUE, { stale: true, stale_seconds: 12 }) };
      const category = new URLSearchParams(url.split("?")[1]).get("category");
      return { status: 200, body: snapshotAnswer(category, fresh(), { stale: true, stale_seconds: 12 }) };
    }));
    assert.strictEqual(p.pill(), "live");
    assert.ok(p.notice().hidden);
    stale = true;
    await p.refreshAgain();
    assert.strictEqual(p.pill(), "stale");
    assert.ok(!p.notice().hidden);
    assert.strictEqual(p.notice().dataset.kind, "stale");
    assert.ok(!p.notice().classList.contains("notice-bad"), "a polite banner, not an alarm");
    assert.match(p.notice().textContent, /Results are 12 s old: the results store cannot be reached/);
    assert.match(p.focusText(), /item of site/, "the lists stay");
    stale = false;
    await p.refreshAgain();
    assert.strictEqual(p.pill(), "live");
    assert.ok(p.notice().hidden, "the banner goes when the server is fresh again");
  },

  async emptyNodeSaysNoPurchasesYet() {
    const p = await page("", (url) => url === "/v1/categories"
      ? { status: 200, body: Object.assign({}, CATALOGUE, { empty: true, as_of: null }) }
      : { status: 200, body: snapshotAnswer("", fresh(), { items: [], empty: true, as_of: null, window_start: null, window_end: null }) });
    assert.strictEqual(p.pill(), "no data yet");
    assert.match(p.focusText(), /No purchases counted yet/);
    assert.doesNotMatch(p.focusText(), /1970|1969/);
  },
};

(async () => {
  for (const [name, check] of Object.entries(checks)) {
    try {
      await check();
      console.log("ok   " + name);
    } catch (error) {
      console.log("FAIL " + name + ": " + (error.stack || error));
      process.exitCode = 1;
    }
  }
})();
