// The playground: loads the wasm build of kubenat and wires the page's four parts to it.
// With no click it plays the notes' network and lists the first request's hops in
// #journey, then sets data-state="done" on it.

import init, * as kubenat from "./pkg/kubenat_web.js";
import { drawCluster, highlight } from "./cluster.js";
import { label, language, setLanguage } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const STEP_MS = 300;
// `kubenat simulate` makes 4 requests: the same run, the same JSON.
const DEFAULT_REQUESTS = 4;
let requests = 1;
let animation = null;
let notesServices = [];

function status(key, values) {
  label($("status"), key, values);
}

/// Lists request `id`'s hops (the CLI's lines) in `list` and walks the drawing through them.
function showJourney(sim, id) {
  const report = JSON.parse(sim.json());
  const journey = report.journeys.find((j) => j.id === id);
  const hops = JSON.parse(sim.hops(id));
  const list = $("journey");
  list.dataset.state = "running";
  list.replaceChildren(
    ...hops.map((hop) => {
      const li = document.createElement("li");
      li.textContent = hop.line;
      li.dataset.at = hop.at;
      if (/\b(DNAT|SNAT)\b/.test(hop.line)) li.classList.add("rewrite");
      return li;
    }),
  );
  if (journey?.outcome.served_by) {
    label($("journey-title"), "journeyOf", { id, pod: journey.outcome.served_by });
  } else {
    label($("journey-title"), "journeyFailed", { id, error: journey?.outcome.error ?? "?" });
  }
  $("report-json").textContent = sim.json();
  $("sequence").innerHTML = sim.svg(id);
  drawCluster($("cluster"), report, notesServices);
  // Every line is there now; the animation only highlights them, one after another.
  list.dataset.state = "done";
  // When the first journey was shown, from navigation start: the 1 s contract.
  list.dataset.firstMs ??= performance.now().toFixed(0);
  animate(list, hops);
}

function animate(list, hops) {
  clearInterval(animation);
  let i = 0;
  animation = setInterval(() => {
    const items = list.children;
    for (const item of list.querySelectorAll(".active")) item.classList.remove("active");
    if (i >= hops.length) {
      clearInterval(animation);
      highlight($("cluster"), "");
      return;
    }
    items[i].classList.add("active");
    highlight($("cluster"), hops[i].at, hops[i - 1]?.at);
    i += 1;
  }, STEP_MS);
}

function seed() {
  return Math.max(0, Math.min(4294967295, Number($("seed").value) || 0));
}

function sendRequest(event) {
  event?.preventDefault();
  const started = performance.now();
  const sim = kubenat.simulate(seed(), Math.max(DEFAULT_REQUESTS, requests));
  showJourney(sim, requests);
  $("request-summary").textContent = sim.text().split("\n").find((l) => l.startsWith("sequence:")) ?? "";
  status("ready", { ms: (performance.now() - started).toFixed(0) });
  sim.free();
}

function breakIt(event) {
  event.preventDefault();
  let sim;
  try {
    sim = kubenat.break_things($("breakage").value, seed());
  } catch (error) {
    return status("failed", { error });
  }
  const report = JSON.parse(sim.json());
  const s = report.summary;
  label($("break-summary"), "breakSummary", {
    requests: s.requests, ok: s.succeeded, failed: s.failed, lost: s.lost ?? 0,
  });
  $("break-json").textContent = sim.json();
  $("break-requests").replaceChildren(
    ...report.journeys.map((j) => {
      const span = document.createElement("span");
      const ok = j.outcome.status >= 200 && j.outcome.status < 300;
      span.className = ok ? "ok" : "failed";
      span.textContent = j.id;
      span.title = ok ? j.outcome.served_by : j.outcome.error ?? "";
      return span;
    }),
  );
  const text = sim.text();
  // The totals and what the event cost: the report after the journeys.
  $("break-report").textContent = text.slice(text.search(/^\d+ requests:/m));
  drawCluster($("cluster"), report, notesServices);
  sim.free();
}

function manifests() {
  return $("manifests").value;
}

function showProblems(problems, kind = "error") {
  $("manifest-errors").replaceChildren(
    ...problems.map((p) => {
      const li = document.createElement("li");
      li.className = kind;
      li.textContent = p.text;
      if (p.line) li.dataset.line = p.line;
      if (p.field) li.dataset.field = p.field;
      return li;
    }),
  );
}

/// Imports the textarea; fills the node list when it can. Returns whether it imported.
function check() {
  const checked = JSON.parse(kubenat.check(manifests()));
  if (checked.errors.length) {
    showProblems(checked.errors);
    return false;
  }
  showProblems(checked.warnings, "warning");
  const info = document.createElement("li");
  info.className = "ok";
  label(info, "noErrors", { nodes: checked.nodes.join(", ") });
  $("manifest-errors").prepend(info);
  const select = $("trace-node");
  const chosen = select.value;
  select.replaceChildren(...checked.nodes.map((n) => new Option(n, n)));
  if (checked.nodes.includes(chosen)) select.value = chosen;
  else if (checked.nodes.includes("nodoa")) select.value = "nodoa";
  return true;
}

function trace(event) {
  event.preventDefault();
  const out = JSON.parse(
    kubenat.trace(manifests(), $("trace-node").value, $("trace-proto").value, $("trace-src").value, $("trace-dst").value),
  );
  const verdict = $("trace-verdict");
  if (out.errors) {
    verdict.textContent = out.errors.map((e) => e.text).join("\n");
    verdict.dataset.verdict = "error";
    $("trace-output").textContent = "";
    return;
  }
  verdict.dataset.verdict = out.ok.json.verdict;
  verdict.textContent = out.ok.text.trim().split("\n").at(-1);
  $("trace-output").textContent = out.ok.text;
}

function rules() {
  const out = JSON.parse(kubenat.rules(manifests(), $("trace-node").value));
  if (out.errors) return showProblems(out.errors);
  $("rules-output").textContent = out.ok.text;
}

async function main() {
  setLanguage(language());
  status("loading");
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.lang));
  }
  try {
    await init();
    const notes = kubenat.notes_manifests();
    $("manifests").value = notes;
    notesServices = JSON.parse(kubenat.rules(notes, "nodo1")).ok.json.service_ports;
    check();
    sendRequest();
  } catch (error) {
    status("failed", { error });
    $("journey").dataset.state = "error";
    throw error;
  }
  $("send").addEventListener("submit", (e) => {
    requests += 1;
    sendRequest(e);
  });
  $("seed").addEventListener("change", () => {
    requests = 1;
    sendRequest();
  });
  $("break-form").addEventListener("submit", breakIt);
  $("trace-form").addEventListener("submit", trace);
  $("check").addEventListener("click", check);
  $("show-rules").addEventListener("click", rules);
  $("reset-manifests").addEventListener("click", () => {
    $("manifests").value = kubenat.notes_manifests();
    check();
  });
}

main();
