// twitchgraph serve: keeps the map's state in the URL's hash (selected streamer, hidden
// communities, raid and flow layers, camera), so a view can be shared and reloaded, and links the
// selected streamer to their page. Loaded after map.js, which exposes window.__map.
(function () {
  "use strict";
  var map = window.__map;
  if (!map) return;
  map.readyAt = performance.now();  // map.js done: for benchmarks/serve.py
  var link = document.getElementById("streamer-link");

  // ----- time slider: each window's communities (lineages keep their colour as they move) --
  var DATA = JSON.parse(document.getElementById("graph-data").textContent);
  var T = DATA.timeline;
  var slider = null;
  var original = DATA.nodes.map(function (n) { return n.color; });
  function showWindow(w) {
    var t0 = performance.now();
    var all = !T || w >= T.windows.length;
    var row = all ? null : T.lineage[w];
    var i = 0;
    map.graph.updateEachNodeAttributes(function (key, attrs) {
      var lin = row ? row[i] : 0;
      attrs.color = all ? original[i] : (lin < 0 ? original[i] : T.colors[String(lin)]);
      attrs.hidden = !all && lin < 0;
      i += 1;
      return attrs;
    });
    if (slider) {
      slider.value = String(all ? T.windows.length : w);
      document.getElementById("time-label").textContent = all ? "whole period" : T.windows[w];
      var note = all ? "" : ((T.notes || [])[w] || "");
      var noteBox = document.getElementById("time-note");
      noteBox.textContent = note;
      noteBox.hidden = !note;
      windowLegend(all ? null : w);
    }
    map.window = all ? null : w;
    map.sliderMs = performance.now() - t0;
  }
  // The legend follows the window: its own lineages, in the colours the map shows them in.
  var mainLegend = document.getElementById("legend");
  var legendTitle = mainLegend.previousElementSibling;
  while (legendTitle && legendTitle.tagName !== "H2") legendTitle = legendTitle.previousElementSibling;
  var legendActions = document.getElementById("legend-actions");
  var timeLegend = document.createElement("ul");
  timeLegend.id = "time-legend"; timeLegend.hidden = true;
  mainLegend.parentNode.insertBefore(timeLegend, mainLegend.nextSibling);
  function windowLegend(w) {
    var on = w !== null;
    mainLegend.hidden = on; legendActions.hidden = on; timeLegend.hidden = !on;
    if (legendTitle) legendTitle.textContent = on ? "Communities in " + T.windows[w] : "Communities";
    while (timeLegend.firstChild) timeLegend.removeChild(timeLegend.firstChild);
    if (!on) return;
    var entries = (T.legends || [])[w] || [];
    entries.forEach(function (e) {
      var li = document.createElement("li");
      li.dataset.lineage = String(e[0]);
      var swatch = document.createElement("span");
      swatch.className = "swatch"; swatch.style.background = T.colors[String(e[0])];
      var name = document.createElement("span");
      name.className = "name"; name.textContent = "L" + e[0] + " · " + e[1] + " · " + e[2];
      li.appendChild(swatch); li.appendChild(name);
      timeLegend.appendChild(li);
    });
    if (!entries.length) {
      var empty = document.createElement("li");
      empty.textContent = (T.notes || [])[w] || "no graph in this window";
      timeLegend.appendChild(empty);
    }
  }
  if (T && T.windows.length) {
    var box = document.createElement("div");
    box.id = "time";
    var label = document.createElement("label");
    label.textContent = "Window: ";
    var name = document.createElement("span");
    name.id = "time-label";
    name.textContent = "whole period";
    slider = document.createElement("input");
    slider.type = "range"; slider.id = "time-slider"; slider.min = "0";
    slider.max = String(T.windows.length); slider.step = "1"; slider.value = slider.max;
    slider.setAttribute("aria-label", "time window");
    slider.addEventListener("input", function () { showWindow(Number(slider.value)); });
    label.appendChild(name);
    box.appendChild(label);
    box.appendChild(slider);
    var why = document.createElement("p");  // an empty window says why it is empty
    why.id = "time-note"; why.className = "yellow"; why.hidden = true;
    box.appendChild(why);
    var summary = document.getElementById("summary");
    summary.parentNode.insertBefore(box, summary.nextSibling);
  }
  map.showWindow = showWindow;

  function boxes() { return Array.prototype.slice.call(document.querySelectorAll("#legend input[type=checkbox]")); }
  function read() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    return {
      q: params.get("q") || "",
      hide: (params.get("hide") || "").split(",").filter(function (x) { return x !== ""; }),
      raids: params.get("raids") === "1",
      flows: params.get("flows") === "1",
      cam: (params.get("cam") || "").split(",").map(Number),
      t: params.has("t") ? Number(params.get("t")) : null,
    };
  }
  function write() {
    var params = new URLSearchParams();
    if (map.selected) params.set("q", map.selected);
    var hidden = boxes().filter(function (b) { return !b.checked; }).map(function (b) { return b.dataset.community; });
    if (hidden.length) params.set("hide", hidden.join(","));
    if (map.raids) params.set("raids", "1");
    if (map.flows) params.set("flows", "1");
    if (map.window !== null && map.window !== undefined) params.set("t", String(map.window));
    var c = map.renderer.getCamera().getState();
    params.set("cam", [c.x, c.y, c.ratio].map(function (v) { return Math.round(v * 10000) / 10000; }).join(","));
    var hash = "#" + params.toString();
    if (hash !== location.hash) history.replaceState(null, "", hash);
    var query = new URLSearchParams();
    if (hidden.length) query.set("hide", hidden.join(","));
    if (map.window !== null && map.window !== undefined) query.set("t", String(map.window));
    var suffix = query.toString() ? "?" + query.toString() : "";
    document.getElementById("download-png").href = "/download/map.png" + suffix;
    document.getElementById("download-gexf").href = "/download/map.gexf" + suffix;
    if (map.selected) {
      link.href = "/streamer/" + encodeURIComponent(map.selected);
      link.hidden = false;
    } else {
      link.hidden = true;
    }
  }
  function apply(state) {
    var hide = Object.create(null);
    state.hide.forEach(function (c) { hide[c] = true; });
    boxes().forEach(function (b) {
      var want = !hide[b.dataset.community];
      if (b.checked !== want) { b.checked = want; b.dispatchEvent(new Event("change")); }
    });
    if (state.raids !== map.raids) map.showRaids(state.raids);
    if (state.flows !== map.flows) map.showFlows(state.flows);
    if (T && state.t !== null && isFinite(state.t)) showWindow(Math.max(0, Math.min(state.t, T.windows.length)));
    if (state.q) map.search(state.q);
    if (state.cam.length === 3 && state.cam.every(isFinite)) {
      // after the animations the filters and the search start
      setTimeout(function () { map.renderer.getCamera().setState({ x: state.cam[0], y: state.cam[1], ratio: state.cam[2], angle: 0 }); }, 450);
    }
  }
  apply(read());
  setTimeout(function () { setInterval(write, 250); map.urlReady = true; }, 500);
  window.addEventListener("hashchange", function () { apply(read()); });
})();
