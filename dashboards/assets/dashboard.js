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

  function cell(row, i, text) {
    while (row.children.length <= i) row.appendChild(document.createElement("td"));
    setText(row.children[i], text);
  }

  function orderRow(o) {
    var row = document.createElement("tr");
    row.id = "order-row-" + o.id;
    row.innerHTML = '<td><a id="order-link-' + esc(o.id) + '" href="?order=' + encodeURIComponent(o.id) +
      '" data-order="' + esc(o.id) + '">' + esc(o.id) + '</a></td><td></td><td><div class="progress">' +
      '<div class="progress-fill"></div></div></td><td></td><td></td><td></td>';
    return row;
  }

  // Rows are kept and updated in place (a link under the pointer must survive a refresh, or a slow tap is lost);
  // only new orders get new rows, and rows move only when the order of the list changes.
  function applyOrders(orders) {
    var body = byId("orders-body");
    if (!body) return;
    var keep = {};
    orders.forEach(function (o, i) {
      var row = byId("order-row-" + o.id) || orderRow(o);
      keep[row.id] = true;
      var cls = "order-row status-" + o.status.replace(" ", "-") + " origin-" + o.origin;
      if (row.className !== cls) row.className = cls;
      if (row.getAttribute("data-status") !== o.status) row.setAttribute("data-status", o.status);
      cell(row, 1, o.product);
      row.children[2].firstChild.firstChild.style.width = o.progress + "%";
      cell(row, 3, o.at);
      cell(row, 4, o.eta);
      cell(row, 5, o.status);
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    });
    Array.prototype.slice.call(body.children).forEach(function (row) {
      if (!keep[row.id]) body.removeChild(row);
    });
  }

  // Following an order changes the address without reloading the page, as dcc.Link does, so Dash's
  // dcc.Location (and the "followed order" callback) sees the new ?order=. The order is the one under the
  // pointer when it was pressed: the list moves every second, and a slow tap must not land on its neighbour.
  function follow(href) {
    window.history.pushState({}, "", href);
    window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
  }

  var pressed = null;
  document.addEventListener("pointerdown", function (event) {
    var link = event.target.closest && event.target.closest("a[data-order]");
    var plain = link && event.button === 0 && !event.ctrlKey && !event.metaKey && !event.shiftKey;
    pressed = plain ? { href: link.getAttribute("href"), x: event.clientX, y: event.clientY } : null;
  });
  document.addEventListener("pointerup", function (event) {
    var p = pressed;
    pressed = null;
    if (p && Math.abs(event.clientX - p.x) + Math.abs(event.clientY - p.y) < 10) follow(p.href);
  });
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-order]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    if (event.detail === 0) follow(link.getAttribute("href"));  // keyboard (Enter) or script: no pointer press
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
