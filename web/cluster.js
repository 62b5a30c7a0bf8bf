// The notes' cluster drawn as SVG from a run's places (machines on the LAN, nodes, the
// pods on each node) and a node's Service rules: the picture of the notes' first page.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/// The id of a place's group, for highlighting hops.
export function placeId(name) {
  return "place-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
}

function box(kind, name, ip, x, y, w, h, gone) {
  // A stopped pod keeps its box, dashed; the id (for highlighting) is its live successor's.
  const g = el("g", gone ? { class: kind + " dead" } : { id: placeId(name), class: kind });
  g.append(el("rect", { class: "box", x, y, width: w, height: h, rx: 6 }));
  const size = kind === "pod" ? 10.5 : 13;
  const label = el("text", { x: x + 8, y: y + 17, "font-size": size, "font-weight": 600 }, name);
  // Long pod names (the ingress controller's) are squeezed into the box, never cut.
  if (name.length * size * 0.6 > w - 16) {
    label.setAttribute("textLength", w - 16);
    label.setAttribute("lengthAdjust", "spacingAndGlyphs");
  }
  g.append(label);
  g.append(el("text", { x: x + 8, y: y + 33, "font-size": size }, ip));
  return g;
}

/// Draws `report` (the simulator's JSON) into `svg`; `services` are `kubenat rules -o json`
/// service ports, listed as every node's NETFILTER holds them.
export function drawCluster(svg, report, services) {
  for (const child of [...svg.children]) if (child.tagName !== "title") child.remove();
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#c08a00" }));
  const defs = el("defs");
  defs.append(marker);
  svg.append(defs);
  const places = report.places;
  const machines = places.filter((p) => p.kind === "machine");
  const nodes = places.filter((p) => p.kind === "node");
  // A pod rescheduled during the run shows where it ended; the dead one stays, dashed.
  const pods = places.filter((p) => p.kind === "pod");

  const laneY = 120;
  svg.dataset.lane = laneY;
  svg.append(el("line", { class: "wire", x1: 10, y1: laneY, x2: WIDTH - 10, y2: laneY }));
  svg.append(el("text", { x: 14, y: laneY - 6, fill: "#667" }, "192.168.0.0/16"));

  const mw = 180;
  const gap = (WIDTH - machines.length * mw) / (machines.length + 1);
  machines.forEach((m, i) => {
    const x = gap + i * (mw + gap);
    svg.append(el("line", { class: "wire", x1: x + mw / 2, y1: 70, x2: x + mw / 2, y2: laneY }));
    svg.append(box("machine", m.name, m.ip, x, 20, mw, 50, m.until_ns !== null));
  });

  const nw = (WIDTH - 20 - (nodes.length - 1) * 10) / Math.max(nodes.length, 1);
  nodes.forEach((n, i) => {
    const x = 10 + i * (nw + 10);
    const onNode = pods.filter((p) => p.node === n.name);
    const h = 70 + onNode.length * 52;
    svg.append(el("line", { class: "wire", x1: x + nw / 2, y1: laneY, x2: x + nw / 2, y2: 150 }));
    const g = box("node", n.name, n.ip, x, 150, nw, h, false);
    g.append(el("text", { x: x + 8, y: 199, "font-size": 11, fill: "#667" }, "NETFILTER · kubenat"));
    onNode.forEach((p, j) => {
      g.append(box("pod", p.name, p.ip, x + 8, 210 + j * 52, nw - 16, 44, p.until_ns !== null));
    });
    svg.append(g);
  });

  const top = 150 + 70 + Math.max(0, ...nodes.map((n) => pods.filter((p) => p.node === n.name).length)) * 52 + 30;
  svg.append(el("text", { x: 10, y: top, "font-weight": 600 }, "Services"));
  services.forEach((s, i) => {
    const frontends = s.frontends.map((f) => `${f.address} (${f.kind})`).join(", ");
    const line = `${s.service}: ${frontends} -> ${s.cluster_endpoints.join(" | ") || "-"}`;
    svg.append(el("text", { class: "service", x: 10, y: top + 18 + i * 16 }, line));
  });
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${top + 26 + services.length * 16}`);
}

function place(svg, name) {
  return name ? svg.querySelector("#" + CSS.escape(placeId(name))) : null;
}

/// The middle of a place's top edge (its bottom edge for machines, above the LAN).
function anchor(group) {
  const b = group.querySelector("rect").getBBox();
  const bottom = group.classList.contains("machine");
  return [b.x + b.width / 2, bottom ? b.y + b.height : b.y];
}

/// Marks the place of `name` as the one the journey is at, with an arrow from `from`,
/// the place of the hop before, when the packet moved.
export function highlight(svg, name, from) {
  for (const active of svg.querySelectorAll(".active")) active.classList.remove("active");
  svg.querySelector(".hop-arrow")?.remove();
  const to = place(svg, name);
  to?.classList.add("active");
  const start = from !== name ? place(svg, from) : null;
  if (to && start) {
    const [x1, y1] = anchor(start);
    const [x2, y2] = anchor(to);
    // Between a pod and its node the packet crosses the veth; between hosts, the LAN.
    const veth = start.contains(to) || to.contains(start);
    const lane = Number(svg.dataset.lane);
    const d = veth ? `M${x1},${y1} L${x2},${y2}` : `M${x1},${y1} L${x1},${lane} L${x2},${lane} L${x2},${y2}`;
    svg.append(el("path", { class: "hop-arrow", d, fill: "none", "marker-end": "url(#arrow)" }));
  }
}
