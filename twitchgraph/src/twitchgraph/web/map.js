// twitchgraph offline map. Data comes from the JSON block #graph-data; every string from the
// data is put into the page with textContent or as a property value, never parsed as HTML.
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("graph-data").textContent);
  var Graph = window.graphology.Graph;
  var Sigma = window.Sigma;

  // Mixed and multi: raids and flows (directed) may join two streamers an overlap links.
  var graph = new Graph({ type: "mixed", multi: true, allowSelfLoops: false });
  var byLogin = Object.create(null);
  DATA.nodes.forEach(function (n) {
    graph.addNode(n.key, {
      x: n.x, y: n.y, size: n.size, color: n.color, label: n.label || n.key,
      community: n.community, group: n.group,
    });
    byLogin[n.key.toLowerCase()] = n;
  });
  DATA.edges.forEach(function (e) {
    var s = DATA.nodes[e[0]].key, t = DATA.nodes[e[1]].key;
    if (s === t || graph.hasEdge(s, t)) return;
    graph.addUndirectedEdge(s, t, { weight: e[2], size: 0.3 + 1.2 * Math.min(1, e[2] / 100), color: "#3a3f4b" });
  });

  var state = { hovered: null, hoveredNeighbours: null, selected: null, hidden: Object.create(null) };

  // Canvas labels fall back glyph by glyph along this list, like the page's CSS.
  var FONTS = getComputedStyle(document.body).fontFamily || "sans-serif";

  var renderer = new Sigma(graph, document.getElementById("sigma"), {
    labelFont: FONTS,
    labelColor: { color: "#e6e6e6" },
    labelRenderedSizeThreshold: 8,
    // Big maps stay fluid while panning: edges come back when the camera stops.
    hideEdgesOnMove: DATA.edges.length > 50000,
    defaultEdgeColor: "#3a3f4b",
    zIndex: true,
    // Hover label on a dark box (sigma's default box is white, unreadable with light labels).
    defaultDrawNodeHover: function (ctx, data, settings) {
      var size = settings.labelSize, label = data.label || "";
      ctx.font = settings.labelWeight + " " + size + "px " + settings.labelFont;
      ctx.fillStyle = "#1c1f27";
      ctx.beginPath(); ctx.arc(data.x, data.y, data.size + 3, 0, Math.PI * 2); ctx.fill();
      if (!label) return;
      ctx.fillRect(data.x + data.size + 2, data.y - size / 2 - 4, ctx.measureText(label).width + 8, size + 8);
      ctx.fillStyle = "#e6e6e6";
      ctx.fillText(label, data.x + data.size + 6, data.y + size / 3);
    },
    nodeReducer: function (node, attrs) {
      var res = Object.assign({}, attrs);
      if (state.hidden[attrs.group]) { res.hidden = true; return res; }
      var focus = state.hovered || state.selected;
      if (focus) {
        if (node === focus) { res.highlighted = true; res.forceLabel = true; res.zIndex = 2; }
        else if (graph.areNeighbors(node, focus)) { res.forceLabel = state.hovered === focus; res.zIndex = 1; }
        else { res.color = "#2b2f38"; res.label = ""; res.zIndex = 0; }
      }
      return res;
    },
    edgeReducer: function (edge, attrs) {
      var res = Object.assign({}, attrs);
      var ends = graph.extremities(edge);
      var a = graph.getNodeAttribute(ends[0], "group"), b = graph.getNodeAttribute(ends[1], "group");
      if (state.hidden[a] || state.hidden[b]) { res.hidden = true; return res; }
      var focus = state.hovered || state.selected;
      if (focus) {
        if (ends[0] === focus || ends[1] === focus) { res.color = graph.getNodeAttribute(focus, "color"); res.size = attrs.size + 0.5; }
        else res.hidden = true;
      }
      return res;
    },
  });

  // ----- helpers that only ever create text nodes -----
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function fmt(v) {
    if (v === null || v === undefined || v === "") return "–";
    if (typeof v === "number") return Math.abs(v) >= 100 ? Math.round(v).toLocaleString("en") : String(Math.round(v * 100) / 100);
    return String(v);
  }
  function safeUrl(url) {
    try { var u = new URL(url); return (u.protocol === "https:" || u.protocol === "http:") ? u.href : null; }
    catch (e) { return null; }
  }

  // ----- camera -----
  // Sigma fits the whole graph to the screen; fit the frame instead (the components holding
  // the shown communities), so the loners around the graph do not shrink it to a dot.
  var frame = DATA.meta.frame;
  if (frame && frame.x[1] > frame.x[0] && frame.y[1] > frame.y[0]) {
    renderer.setCustomBBox(frame);
    renderer.refresh();  // setCustomBBox alone does not renormalise the positions
  }
  // Home: the frame beside the controls, not under them.
  var home = { x: 0.5, y: 0.5, ratio: 1, angle: 0 };
  var viewWidth = renderer.getContainer().offsetWidth;
  var panelWidth = document.getElementById("controls").offsetWidth + 24;
  if (viewWidth > 2 * panelWidth) {
    // A frame as wide as the screen must fit in the width the panel leaves; the shift that
    // centres it there is half the panel, in the camera's units at that ratio.
    var share = panelWidth / viewWidth, ratio = 1 / (1 - share);
    home = { x: 0.5 - share / 2 * ratio, y: 0.5, ratio: ratio, angle: 0 };
  }
  renderer.getCamera().setState(home);
  function goHome() {
    window.__map.zoomedCommunity = null;
    return renderer.getCamera().animate(home, { duration: 400 });
  }
  function focusNode(key, ratio) {
    var d = renderer.getNodeDisplayData(key);
    if (!d) return Promise.resolve();
    return renderer.getCamera().animate({ x: d.x, y: d.y, ratio: ratio || 0.15 }, { duration: 400 });
  }
  function zoomToCommunity(c) {
    var xs = [], ys = [];
    graph.forEachNode(function (key, attrs) {
      if (attrs.group !== c) return;
      var d = renderer.getNodeDisplayData(key);
      if (d) { xs.push(d.x); ys.push(d.y); }
    });
    if (!xs.length) return;
    if (state.hidden[c]) { delete state.hidden[c]; syncLegend(); }
    var minX = Math.min.apply(null, xs), maxX = Math.max.apply(null, xs);
    var minY = Math.min.apply(null, ys), maxY = Math.max.apply(null, ys);
    var ratio = Math.max(0.05, Math.max(maxX - minX, maxY - minY) * 1.3);
    renderer.getCamera().animate({ x: (minX + maxX) / 2, y: (minY + maxY) / 2, ratio: ratio }, { duration: 500 });
    window.__map.zoomedCommunity = c;
  }

  // ----- side panel -----
  var panel = document.getElementById("panel");
  function select(key) {
    state.selected = key;
    window.__map.selected = key;
    if (!key) { panel.hidden = true; renderer.refresh(); return; }
    var n = byLogin[key.toLowerCase()];
    document.getElementById("panel-name").textContent = n.label || n.key;
    document.getElementById("panel-login").textContent = "login: " + n.key + " · community " + n.community;
    var stats = document.getElementById("panel-stats");
    clear(stats);
    [["Mean viewers", n.viewer_mean], ["Peak viewers", n.viewer_peak], ["Mean chatters", n.chatter_mean],
     ["Chatters (total)", n.chatters_total], ["Minutes live", n.minutes_live], ["Language", n.language],
     ["Main game", n.main_game], ["Broadcaster type", n.broadcaster_type]].forEach(function (pair) {
      var tr = el("tr");
      tr.appendChild(el("td", pair[0]));
      tr.appendChild(el("td", fmt(pair[1])));
      stats.appendChild(tr);
    });
    var list = document.getElementById("panel-neighbours");
    clear(list);
    var neighbours = [];
    graph.forEachEdge(key, function (edge, attrs, s, t) { if (!attrs.raid && !attrs.flow) neighbours.push([s === key ? t : s, attrs.weight]); });
    neighbours.sort(function (a, b) { return b[1] - a[1]; });
    neighbours.slice(0, 10).forEach(function (pair) {
      var li = el("li");
      var name = el("span", graph.getNodeAttribute(pair[0], "label"), "link");
      name.addEventListener("click", function () { select(pair[0]); focusNode(pair[0]); });
      li.appendChild(name);
      li.appendChild(document.createTextNode(" — overlap " + fmt(pair[1]) + " %"));
      list.appendChild(li);
    });
    if (!neighbours.length) list.appendChild(el("li", "none"));
    showRaidsOf(key);
    showFlowsOf(key, n);
    var games = document.getElementById("panel-games");
    clear(games);
    (n.games || []).forEach(function (g) { games.appendChild(el("li", g[0] + " — " + fmt(g[1]) + " min")); });
    if (!(n.games || []).length) games.appendChild(el("li", "none"));
    var social = document.getElementById("panel-social");
    clear(social);
    (n.social || []).forEach(function (url) {
      var li = el("li");
      var href = safeUrl(url);
      if (href) {
        var a = el("a", url);
        a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer";
        li.appendChild(a);
      } else {
        li.appendChild(el("span", url));
      }
      social.appendChild(li);
    });
    if (!(n.social || []).length) social.appendChild(el("li", "none"));
    panel.hidden = false;
    renderer.refresh();
  }
  document.getElementById("panel-close").addEventListener("click", function () { select(null); });

  // ----- hover -----
  renderer.on("enterNode", function (e) { state.hovered = e.node; window.__map.hovered = e.node; renderer.refresh({ skipIndexation: true }); });
  renderer.on("leaveNode", function () { state.hovered = null; window.__map.hovered = null; renderer.refresh({ skipIndexation: true }); });
  renderer.on("clickNode", function (e) { select(e.node); });
  renderer.on("clickStage", function () { select(null); });

  // ----- search -----
  var datalist = document.getElementById("logins");
  DATA.nodes.slice().sort(function (a, b) { return (b.viewer_mean || 0) - (a.viewer_mean || 0); })
    .slice(0, 5000).forEach(function (n) { var o = document.createElement("option"); o.value = n.key; datalist.appendChild(o); });
  function findNode(query) {
    var q = query.trim().toLowerCase();
    if (!q) return null;
    if (byLogin[q]) return byLogin[q].key;
    var hit = null;
    DATA.nodes.some(function (n) { if ((n.label || "").toLowerCase() === q) { hit = n.key; return true; } return false; });
    if (hit) return hit;
    DATA.nodes.some(function (n) {
      if (n.key.toLowerCase().indexOf(q) >= 0 || (n.label || "").toLowerCase().indexOf(q) >= 0) { hit = n.key; return true; }
      return false;
    });
    return hit;
  }
  var status = document.getElementById("search-status");
  function search(query) {
    var key = findNode(query);
    if (!key) { status.textContent = "No streamer matches “" + query + "”."; return null; }
    status.textContent = "";
    var c = graph.getNodeAttribute(key, "group");
    if (state.hidden[c]) { delete state.hidden[c]; syncLegend(); }
    select(key);
    focusNode(key);
    window.__map.focused = key;
    return key;
  }
  document.getElementById("search-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    search(document.getElementById("search").value);
  });
  document.getElementById("search").addEventListener("change", function (ev) { search(ev.target.value); });

  // ----- legend -----
  var legend = document.getElementById("legend");
  var boxes = Object.create(null);
  function syncLegend() {
    Object.keys(boxes).forEach(function (c) { boxes[c].checked = !state.hidden[c]; });
    renderer.refresh();
  }
  // After a search or a zoom the camera may sit where nothing is shown any more.
  function filtersChanged() { syncLegend(); goHome(); }
  DATA.communities.forEach(function (c) {
    var li = el("li");
    var box = document.createElement("input");
    box.type = "checkbox"; box.checked = true; box.title = "show or hide";
    box.dataset.community = String(c.id);
    box.addEventListener("change", function () {
      if (box.checked) delete state.hidden[c.id]; else state.hidden[c.id] = true;
      filtersChanged();
    });
    boxes[c.id] = box;
    var swatch = el("span", null, "swatch");
    swatch.style.background = c.color;
    var name = el("span", (c.id < 0 ? "" : c.id + " · ") + c.size + " · " + (c.name || ""), "name");
    name.title = c.name || "";
    var zoom = el("button", "zoom");
    zoom.type = "button";
    zoom.addEventListener("click", function () { zoomToCommunity(c.id); });
    li.appendChild(box); li.appendChild(swatch); li.appendChild(name); li.appendChild(zoom);
    legend.appendChild(li);
  });
  document.getElementById("show-all").addEventListener("click", function () { state.hidden = Object.create(null); filtersChanged(); });
  document.getElementById("hide-all").addEventListener("click", function () {
    DATA.communities.forEach(function (c) { state.hidden[c.id] = true; }); filtersChanged();
  });

  document.getElementById("title").textContent = DATA.meta.title || "twitchgraph";
  var shown = DATA.communities.filter(function (c) { return c.id >= 0; }).length;
  var total = DATA.meta.communities || shown;
  document.getElementById("summary").textContent = DATA.nodes.length + " streamers, " + graph.size +
    " overlaps, " + total + " communities" + (total > shown ? " (" + shown + " shown, the rest in grey)" : "");

  // ----- raids: a layer of raider -> raided arrows, off by default, and a panel list -----
  var raidEdges = [];
  function showRaids(on) {
    raidEdges.forEach(function (e) { if (graph.hasEdge(e)) graph.dropEdge(e); });
    raidEdges = [];
    if (on) (DATA.raids || []).forEach(function (r) {
      raidEdges.push(graph.addDirectedEdge(DATA.nodes[r[0]].key, DATA.nodes[r[1]].key, {
        raid: true, type: "arrow", weight: r[2], size: 1 + Math.min(4, r[2]), color: "#f5a524" }));
    });
    document.getElementById("raids-layer").checked = !!on;
    window.__map.raids = !!on;
    renderer.refresh();
  }
  function showRaidsOf(key) {
    var list = document.getElementById("panel-raids");
    if (!list) return;
    clear(list);
    (DATA.raids || []).forEach(function (r) {
      var s = DATA.nodes[r[0]].key, t = DATA.nodes[r[1]].key;
      if (s !== key && t !== key) return;
      var other = s === key ? t : s;
      var li = el("li", s === key ? "raided " : "raided by ");
      var name = el("span", graph.getNodeAttribute(other, "label"), "link");
      name.addEventListener("click", function () { select(other); focusNode(other); });
      li.appendChild(name);
      li.appendChild(document.createTextNode(" — " + r[2] + "× , " + fmt(r[3]) + " viewers"));
      list.appendChild(li);
    });
    if (!list.firstChild) list.appendChild(el("li", "none"));
  }
  var raidBox = document.getElementById("raids-layer");
  if (raidBox) {
    raidBox.parentNode.hidden = !(DATA.raids || []).length;
    raidBox.addEventListener("change", function () { showRaids(raidBox.checked); });
  }

  // ----- flows: where chatters are seen when a stream ends; a layer of arrows, off by default,
  // and two panel lists with counts and shares -----
  var flowEdges = [];
  function showFlows(on) {
    flowEdges.forEach(function (e) { if (graph.hasEdge(e)) graph.dropEdge(e); });
    flowEdges = [];
    if (on) (DATA.flows || []).forEach(function (f) {
      flowEdges.push(graph.addDirectedEdge(DATA.nodes[f[0]].key, DATA.nodes[f[1]].key, {
        flow: true, type: "arrow", weight: f[2], size: 0.5 + Math.min(4, Math.sqrt(f[2]) / 3),
        color: "#4cc9f0" }));
    });
    document.getElementById("flows-layer").checked = !!on;
    window.__map.flows = !!on;
    renderer.refresh();
  }
  function pct(x) { return x === null || x === undefined ? "" : ", " + fmt(Math.round(1000 * x) / 10) + " %"; }
  function showFlowsOf(key, n) {
    var label = n.label || n.key;
    var out = document.getElementById("panel-flows-out"), into = document.getElementById("panel-flows-in");
    if (!out || !into) return;
    document.getElementById("panel-flows-out-title").textContent = "When " + label + " ends, its viewers go to";
    document.getElementById("panel-flows-in-title").textContent = label + "'s viewers come from";
    clear(out);
    clear(into);
    (DATA.flows || []).forEach(function (f) {
      var s = DATA.nodes[f[0]].key, t = DATA.nodes[f[1]].key;
      if (s !== key && t !== key) return;
      var other = s === key ? t : s;
      var li = el("li");
      var name = el("span", graph.getNodeAttribute(other, "label"), "link");
      name.addEventListener("click", function () { select(other); focusNode(other); });
      li.appendChild(name);
      // going: share of the chatters at this streamer's ends; coming: share of its arrivals
      li.appendChild(document.createTextNode(" — " + f[2] + " viewers" + pct(s === key ? f[4] : f[5]) +
        " (" + f[3] + (f[3] === 1 ? " end)" : " ends)")));
      (s === key ? out : into).appendChild(li);
    });
    if (!out.firstChild) out.appendChild(el("li", "none"));
    if (!into.firstChild) into.appendChild(el("li", "none"));
  }
  var flowBox = document.getElementById("flows-layer");
  if (flowBox) {
    flowBox.parentNode.hidden = !(DATA.flows || []).length;
    flowBox.addEventListener("change", function () { showFlows(flowBox.checked); });
  }

  // Handle for tests and the console.
  window.__map = { renderer: renderer, graph: graph, search: search, select: select,
    zoomToCommunity: zoomToCommunity, home: home, goHome: goHome, selected: null, focused: null,
    hovered: null, showRaids: showRaids, raids: false, showFlows: showFlows, flows: false,
    ready: true };
})();
