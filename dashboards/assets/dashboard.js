/* simline live dashboard: applies the per-second digest of a snapshot (dashboards/payload.py) to the big-screen
   page built by dashboards/views.py, in place: classes, texts, widths, the order rows and the sparklines.
   Dash calls window.dash_clientside.simline.apply whenever the "snap" store receives new data. */
(function () {
  "use strict";

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function sparkline(values) {
    var known = values.filter(function (v) { return v !== null; });
    if (known.length < 2) return "";
    var lo = Math.min.apply(null, known), hi = Math.max.apply(null, known), span = hi - lo || 1;
    var n = values.length - 1 || 1, points = [];
    values.forEach(function (v, i) {
      if (v !== null) points.push((100 * i / n).toFixed(1) + "," + (29 - 27 * (v - lo) / span).toFixed(1));
    });
    return '<svg viewBox="0 0 100 30" preserveAspectRatio="none" class="spark-svg"><polyline points="' +
      points.join(" ") + '" fill="none" stroke="#1565c0" stroke-width="2" vector-effect="non-scaling-stroke"/></svg>';
  }

  function followedStations() {
    var card = document.querySelector("#order-card .order-progress");
    var at = card ? card.getAttribute("data-at") : "";
    return new Set(at ? at.split("|") : []);
  }

  function applyLine(line, followed) {
    line.stations.forEach(function (st) {
      var card = byId(line.key + "-station-" + st.id);
      if (!card) return;
      var cls = "station state-" + st.state + (st.down ? " alarm" : "") +
        (line.key === "l0" && followed.has(card.getAttribute("data-name")) ? " followed" : "");
      if (card.className !== cls) card.className = cls;
      if (card.getAttribute("data-state") !== st.state) card.setAttribute("data-state", st.state);
      setText(card.querySelector(".station-state"), st.state.replace("_", " "));
      setText(card.querySelector(".station-meta"), st.meta);
      var fill = card.querySelector(".buffer-fill");
      if (fill) fill.style.width = st.fill + "%";
      var dots = card.querySelectorAll(".dot");
      st.machines.forEach(function (m, i) { if (dots[i]) dots[i].className = "dot state-" + m; });
    });
    var alarms = byId(line.key + "-alarms");
    if (!alarms) return;
    if (line.alarms.length) {
      var html = line.alarms.map(function (a) { return "<div>⚠ " + esc(a) + "</div>"; }).join("");
      if (alarms.innerHTML !== html) alarms.innerHTML = html;
      alarms.className = "alarms";
    } else {
      setText(alarms, "No alarms");
      alarms.className = "no-alarms";
    }
  }

  var lastOrders = "";

  function applyOrders(orders) {
    var body = byId("orders-body");
    if (!body) return;
    var key = JSON.stringify(orders);
    if (key === lastOrders && body.children.length === orders.length) return;
    lastOrders = key;
    body.innerHTML = orders.map(function (o) {
      var status = o.status.replace(" ", "-");
      return '<tr id="order-row-' + esc(o.id) + '" class="order-row status-' + status + " origin-" + esc(o.origin) +
        '" data-status="' + esc(o.status) + '"><td><a id="order-link-' + esc(o.id) + '" href="?order=' +
        encodeURIComponent(o.id) + '" data-order="' + esc(o.id) + '">' + esc(o.id) + "</a></td><td>" +
        esc(o.product) + '</td><td><div class="progress"><div class="progress-fill" style="width:' + o.progress +
        '%"></div></div></td><td>' + esc(o.at) + "</td><td>" + esc(o.eta) + "</td><td>" + esc(o.status) +
        "</td></tr>";
    }).join("");
  }

  // An order link changes the address without reloading the page, as dcc.Link does, so Dash's
  // dcc.Location (and the "followed order" callback) sees the new ?order=.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-order]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    window.history.pushState({}, "", link.getAttribute("href"));
    window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
  });

  function apply(data) {
    if (!data) return window.dash_clientside.no_update;
    setText(byId("clock"), data.clock);
    var state = byId("run-state");
    if (state) {
      setText(state, data.state);
      state.className = "badge " + data.state;
    }
    setText(byId("speed-text"), data.speed);
    setText(byId("shift-text"), data.shift);
    setText(byId("lag-text"), data.lag);
    data.tiles.forEach(function (t) {
      t.values.forEach(function (v, i) {
        var value = byId(i ? "kpi-" + t.key + "-value-" + i : "kpi-" + t.key + "-value");
        if (value) setText(value.querySelector(".tile-number"), v);
      });
      var tile = byId("kpi-" + t.key);
      var spark = tile && tile.querySelector(".spark");
      if (spark) spark.innerHTML = sparkline(t.trend);
    });
    var followed = followedStations();
    data.lines.forEach(function (line) { applyLine(line, followed); });
    applyOrders(data.orders);
    setText(byId("orders-more"), data.more);
    if (data.money) {
      setText(byId("money-net"), data.money.net);
      setText(byId("money-net-funded"), data.money.funded);
      var detail = byId("money-detail");
      if (detail) {
        var html = data.money.detail.map(function (d) { return "<div>" + esc(d) + "</div>"; }).join("");
        if (detail.innerHTML !== html) detail.innerHTML = html;
      }
    }
    return data.seq;
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, { simline: { apply: apply } });
})();
