/* hydrascope explorer: sortable/filterable tables and vis-network graphs.
 * All data comes from the inert JSON block #hs-data. Text reaches the page only through
 * textContent / createTextNode and vis-network tooltips are plain strings (shown with
 * innerText), so account-written strings are never parsed as HTML. */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("hs-data").textContent);
  var HS = { data: data, ready: false };
  window.hydrascope = HS;

  var ACCOUNT_COLOR = "#ff7f0e";
  var SAFE_HREF = /^clusters\/[A-Za-z0-9_.-]+\.html$/;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function short(s, n) {
    s = s === null || s === undefined ? "" : String(s);
    return s.length <= n ? s : s.slice(0, n - 1) + "\u2026";
  }

  function fmt(v, type) {
    if (v === null || v === undefined) { return ""; }
    if (type === "num") {
      if (typeof v !== "number") { return String(v); }
      return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 1 : 4);
    }
    if (type === "bool") { return v ? "yes" : "no"; }
    return String(v);
  }

  function kindLabel(kind) {
    var k = data.kinds && data.kinds[kind];
    return k ? k.label : String(kind);
  }

  function layerColor(layer) {
    return (data.colors && data.colors[layer]) || "#7f7f7f";
  }

  function markReady() {
    HS.ready = true;
    window.hydrascopeReady = true;
    document.body.setAttribute("data-ready", "1");
  }

  /* ---------------------------------------------------------------- table */
  function Table(root, opts) {
    this.root = root;
    this.columns = opts.columns;
    this.rows = opts.rows.map(function (r, i) { return { i: i, r: r }; });
    this.pageSize = opts.pageSize || 100;
    this.rowClass = opts.rowClass || null;
    this.sortCol = opts.sortCol === undefined ? -1 : opts.sortCol;
    this.sortDir = opts.sortDir || 1;
    this.predicates = {};
    this.query = "";
    this.page = 0;
    this.view = this.rows.slice();
    this.build();
    this.apply();
  }

  Table.prototype.build = function () {
    var self = this;
    this.table = el("table");
    var thead = el("thead");
    var tr = el("tr");
    this.headers = this.columns.map(function (c, ci) {
      var th = el("th", { scope: "col", "aria-sort": "none" });
      if (c.type === "num") { th.className = "num"; }
      var b = el("button", { type: "button", title: "sort by " + c.label }, c.label);
      b.addEventListener("click", function () {
        if (self.sortCol === ci) { self.sortDir = -self.sortDir; } else { self.sortCol = ci; self.sortDir = c.type === "num" ? -1 : 1; }
        self.page = 0;
        self.apply();
      });
      th.appendChild(b);
      tr.appendChild(th);
      return th;
    });
    thead.appendChild(tr);
    this.tbody = el("tbody");
    this.table.appendChild(thead);
    this.table.appendChild(this.tbody);
    this.pager = el("div", { "class": "pager" });
    this.info = el("span");
    this.prev = el("button", { type: "button" }, "\u2039 previous");
    this.next = el("button", { type: "button" }, "next \u203a");
    this.prev.addEventListener("click", function () { if (self.page > 0) { self.page--; self.render(); } });
    this.next.addEventListener("click", function () {
      if ((self.page + 1) * self.pageSize < self.view.length) { self.page++; self.render(); }
    });
    this.pager.appendChild(this.prev);
    this.pager.appendChild(this.next);
    this.pager.appendChild(this.info);
    this.root.textContent = "";
    this.root.appendChild(this.table);
    this.root.appendChild(this.pager);
  };

  Table.prototype.haystack = function (row) {
    if (row.h === undefined) {
      var cols = this.columns;
      row.h = cols.map(function (c) {
        var v = c.text ? c.text(row.r) : row.r[c.key];
        return v === null || v === undefined ? "" : String(v);
      }).join("\u0000").toLowerCase();
    }
    return row.h;
  };

  Table.prototype.setQuery = function (q) { this.query = String(q || "").toLowerCase().trim(); this.page = 0; this.apply(); };
  Table.prototype.setPredicate = function (name, fn) {
    if (fn) { this.predicates[name] = fn; } else { delete this.predicates[name]; }
    this.page = 0;
    this.apply();
  };

  Table.prototype.apply = function () {
    var self = this;
    var preds = Object.keys(this.predicates).sort().map(function (k) { return self.predicates[k]; });
    var q = this.query;
    this.view = this.rows.filter(function (row) {
      for (var p = 0; p < preds.length; p++) { if (!preds[p](row.r, row.i)) { return false; } }
      return !q || self.haystack(row).indexOf(q) !== -1;
    });
    if (this.sortCol >= 0) {
      var c = this.columns[this.sortCol];
      var key = c.key;
      var dir = this.sortDir;
      this.view.sort(function (a, b) {
        var x = c.sortValue ? c.sortValue(a.r) : a.r[key];
        var y = c.sortValue ? c.sortValue(b.r) : b.r[key];
        var xn = x === null || x === undefined || x === "";
        var yn = y === null || y === undefined || y === "";
        if (xn || yn) { return xn === yn ? a.i - b.i : (xn ? 1 : -1); }
        if (typeof x === "boolean") { x = x ? 1 : 0; y = y ? 1 : 0; }
        if (x < y) { return -dir; }
        if (x > y) { return dir; }
        return a.i - b.i;
      });
    }
    this.headers.forEach(function (th, ci) {
      th.setAttribute("aria-sort", ci === self.sortCol ? (self.sortDir > 0 ? "ascending" : "descending") : "none");
    });
    this.render();
  };

  Table.prototype.render = function () {
    var start = this.page * this.pageSize;
    var slice = this.view.slice(start, start + this.pageSize);
    var frag = document.createDocumentFragment();
    var cols = this.columns;
    var rowClass = this.rowClass;
    slice.forEach(function (row) {
      var tr = el("tr");
      if (rowClass) { var cls = rowClass(row.r); if (cls) { tr.className = cls; } }
      cols.forEach(function (c) {
        var td = el("td");
        if (c.type === "num") { td.className = "num"; }
        var v = c.text ? c.text(row.r) : fmt(row.r[c.key], c.type);
        var href = c.href ? c.href(row.r) : null;
        if (href) {
          td.appendChild(el("a", { href: href }, v));
        } else {
          td.textContent = v;
        }
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    });
    this.tbody.textContent = "";
    this.tbody.appendChild(frag);
    var n = this.view.length;
    this.info.textContent = n === 0 ? "no rows match"
      : "rows " + (start + 1) + "\u2013" + Math.min(n, start + this.pageSize) + " of " + n
        + (n !== this.rows.length ? " (filtered from " + this.rows.length + ")" : "");
    this.prev.disabled = this.page === 0;
    this.next.disabled = start + this.pageSize >= n;
    this.pager.hidden = this.rows.length <= this.pageSize && n === this.rows.length;
  };

  /* ---------------------------------------------------------------- graphs */
  function legend(root, withKinds, kindsShown) {
    if (!root) { return; }
    (data.layers || []).forEach(function (l) {
      var s = el("span");
      var sw = el("span", { "class": "sw" });
      sw.style.background = l.color;
      s.appendChild(sw);
      s.appendChild(document.createTextNode(l.name));
      root.appendChild(s);
    });
    var a = el("span");
    var sw = el("span", { "class": "sw" });
    sw.style.background = ACCOUNT_COLOR;
    a.appendChild(sw);
    a.appendChild(document.createTextNode(withKinds ? "account" : "flagged cluster: red, other: grey"));
    root.appendChild(a);
    if (withKinds) {
      var shapes = { dot: "\u25cf", diamond: "\u25c6", square: "\u25a0", triangle: "\u25b2", star: "\u2605", hexagon: "\u2b22", triangleDown: "\u25bc" };
      Object.keys(data.kinds).filter(function (k) { return !kindsShown || kindsShown[k]; }).forEach(function (k) {
        root.appendChild(el("span", null, (shapes[data.kinds[k].shape] || "") + " " + data.kinds[k].label));
      });
    }
  }

  function makeNetwork(container, nodes, edges, big) {
    if (typeof vis === "undefined" || !vis.Network) {
      container.textContent = "vis-network did not load; the graph cannot be drawn.";
      markReady();
      return null;
    }
    var nodeSet = new vis.DataSet(nodes);
    var edgeSet = new vis.DataSet(edges);
    var network = new vis.Network(container, { nodes: nodeSet, edges: edgeSet }, {
      autoResize: true,
      physics: { enabled: false, solver: "forceAtlas2Based", stabilization: false },
      layout: { improvedLayout: false, randomSeed: 1 },
      interaction: { hover: !big, tooltipDelay: 120, hideEdgesOnDrag: big, hideEdgesOnZoom: big,
                     navigationButtons: false, keyboard: false, multiselect: false },
      nodes: { font: { size: 12, face: "system-ui, sans-serif" }, borderWidth: 1,
               scaling: { label: { drawThreshold: 6 } } },
      edges: { smooth: false, selectionWidth: 2 }
    });
    network.once("afterDrawing", markReady);
    HS.network = network;
    HS.nodes = nodeSet;
    HS.edges = edgeSet;
    var physics = document.getElementById("physics");
    if (physics) {
      physics.addEventListener("change", function () {
        network.setOptions({ physics: { enabled: physics.checked } });
      });
    }
    var fit = document.getElementById("fit");
    if (fit) { fit.addEventListener("click", function () { network.fit({ animation: false }); }); }
    return network;
  }

  /* ---------------------------------------------------------------- index page */
  function initIndex() {
    var cols = data.columns;
    var C = {};
    cols.forEach(function (c, i) { C[c] = i; });
    var table = new Table(document.getElementById("clusters-table"), {
      pageSize: data.page_size || 250,
      rowClass: function (r) { return r[C.flagged] ? "flagged" : ""; },
      columns: [
        { key: C.cluster_id, label: "cluster", type: "text",
          href: function (r) { return SAFE_HREF.test(r[C.href]) ? r[C.href] : null; } },
        { key: C.n_accounts, label: "accounts", type: "num" },
        { key: C.score, label: "score", type: "num" },
        { key: C.flagged, label: "flagged", type: "bool" },
        { key: C.reasons, label: "reasons", type: "text" },
        { key: C.stability, label: "stability", type: "num" },
        { key: C.top_layer, label: "main layer", type: "text" },
        { key: C.first_seen, label: "first seen", type: "text" },
        { key: C.last_seen, label: "last seen", type: "text" }
      ],
      rows: data.clusters
    });
    HS.table = table;
    var q = document.getElementById("cluster-filter");
    var flagged = document.getElementById("flagged-only");
    var minSize = document.getElementById("min-size");
    q.addEventListener("input", function () { table.setQuery(q.value); });
    flagged.addEventListener("change", function () {
      table.setPredicate("flagged", flagged.checked ? function (r) { return r[C.flagged] === true; } : null);
    });
    minSize.addEventListener("input", function () {
      var m = parseFloat(minSize.value);
      table.setPredicate("size", m > 0 ? function (r) { return (r[C.n_accounts] || 0) >= m; } : null);
    });

    legend(document.getElementById("overview-legend"), false);
    var g = data.graph;
    var rows = data.clusters;
    var big = g.nodes.length > 500;
    var nodes = g.nodes.map(function (i) {
      var r = rows[i];
      var title = "Cluster " + r[C.cluster_id] + "\n" + r[C.n_accounts] + " accounts \u00b7 score " + fmt(r[C.score], "num")
        + (r[C.flagged] ? " \u00b7 flagged" : " \u00b7 not flagged")
        + (r[C.reasons] ? "\nreasons: " + short(r[C.reasons], 400) : "") + "\nclick to open the cluster's page";
      return { id: i, label: short(r[C.cluster_id], 24), title: title, x: g.pos[i][0], y: g.pos[i][1],
               shape: "dot", size: 6 + 3 * Math.sqrt(r[C.n_accounts] || 1),
               color: r[C.flagged] ? { background: "#e05a4f", border: "#8c1d13" } : { background: "#b8bec8", border: "#6b7280" } };
    });
    var wmax = 0;
    g.edges.forEach(function (e) { wmax = Math.max(wmax, e[2]); });
    var edges = g.edges.map(function (e, k) {
      var a = rows[e[0]][C.cluster_id], b = rows[e[1]][C.cluster_id];
      return { id: k, from: e[0], to: e[1], width: 1 + 5 * (e[2] / (wmax || 1)), color: { color: "#8a94a6", opacity: 0.6 },
               title: "Links between accounts of cluster " + a + " and cluster " + b + ":\n" + e[3]
                 + " linked account pair(s), total weight " + fmt(e[2], "num") + "\nlayers: " + e[4] };
    });
    var network = makeNetwork(document.getElementById("overview"), nodes, edges, big);
    if (network) {
      network.on("click", function (p) {
        if (p.nodes && p.nodes.length) {
          var href = rows[p.nodes[0]][C.href];
          if (SAFE_HREF.test(href)) { window.location.href = href; }
        }
      });
    }
    var note = document.getElementById("overview-note");
    if (g.n_clusters > g.nodes.length) {
      note.textContent = "The overview shows the first " + g.nodes.length + " of " + g.n_clusters + " clusters (by score).";
    } else if (!g.nodes.length) {
      note.textContent = "No clusters in this run.";
    }
  }

  /* ---------------------------------------------------------------- cluster page */
  function initCluster() {
    var cols = data.columns;
    var C = {};
    cols.forEach(function (c, i) { C[c] = i; });
    // identifiers: [kind, identifier, layer, n_in_cluster, n_accounts, pair_weight, is_hub, first, last, skeleton]
    var idents = data.identifiers;
    // identifier nodes: [kind, layer, n_accounts_here, [identifier indexes (sample)], n_identifiers]
    var inodes = data.all_inodes;
    var accounts = data.accounts;
    var g = data.graph;
    var nA = accounts.length;

    function overall(d) { return d[4] !== null && d[4] !== undefined ? d[4] : "?"; }

    function inodeText(k) {
      var n = inodes[k];
      var first = idents[n[3][0]];
      if (n[4] === 1) { return kindLabel(n[0]) + " " + first[1]; }
      return n[4] + " \u00d7 " + kindLabel(n[0]) + " (" + short(first[1], 40) + ", \u2026)";
    }

    function inodeLabel(k) {
      var n = inodes[k];
      return n[4] === 1 ? short(idents[n[3][0]][1], 28) : n[4] + " \u00d7 " + kindLabel(n[0]);
    }

    function inodeTitle(k) {
      var n = inodes[k];
      var lines = [];
      if (n[4] === 1) {
        var d = idents[n[3][0]];
        lines.push(kindLabel(d[0]) + ": " + d[1]);
        lines.push(d[2] + " evidence \u00b7 used by " + d[3] + " account(s) of this cluster, " + overall(d) + " overall");
        if (d[7]) { lines.push("seen " + d[7] + " \u2192 " + (d[8] || "")); }
        if (d[9]) { lines.push("skeleton: " + d[9]); }
      } else {
        lines.push(n[4] + " " + kindLabel(n[0]) + " identifiers, each used by the same " + n[2]
                   + " account(s) of this cluster (" + n[1] + " evidence):");
        n[3].forEach(function (i) { lines.push("  " + short(idents[i][1], 80) + "  (" + overall(idents[i]) + " accounts overall)"); });
        if (n[4] > n[3].length) { lines.push("  \u2026 and " + (n[4] - n[3].length) + " more (see the identifiers table)"); }
      }
      lines.push("click to list the accounts that used it");
      return lines.join("\n");
    }

    function inodeNode(k, id, x, y) {
      var n = inodes[k];
      var kind = data.kinds[n[0]] || { shape: "dot" };
      return { id: id, label: inodeLabel(k), title: inodeTitle(k), shape: kind.shape, x: x, y: y,
               size: Math.min(40, 4 + 2.5 * Math.sqrt(n[2])), font: { size: 11 },
               color: { background: layerColor(n[1]), border: "#333333" } };
    }

    var columns = [{ key: C.account_id, label: "account", type: "text" }];
    var labels = { score: "score", embeddedness: "embeddedness", n_requests: "requests",
                   email_domain: "e-mail domain", country: "country", created_at: "created", prepaid_share: "prepaid share",
                   template_share: "template share", shared_identifiers: "shared identifiers",
                   linked_members: "linked members (by layer)" };
    cols.forEach(function (c, i) {
      if (c === "account_id" || c === "group") { return; }
      var type = ["email_domain", "country", "created_at", "linked_members"].indexOf(c) >= 0 ? "text" : "num";
      columns.push({ key: i, label: labels[c] || c, type: type });
    });
    columns.push({ key: C.group, label: "strongest shared identifier", type: "text",
                   text: function (r) { return r[C.group] >= 0 ? inodeText(r[C.group]) : ""; } });
    var table = new Table(document.getElementById("accounts-table"), {
      pageSize: data.page_size || 100, columns: columns, rows: accounts, sortCol: 1, sortDir: -1
    });
    HS.table = table;
    var q = document.getElementById("account-filter");
    q.addEventListener("input", function () { table.setQuery(q.value); });
    var selection = document.getElementById("selection");
    var clear = document.getElementById("clear-selection");
    function select(text, fn) {
      table.setPredicate("selection", fn);
      selection.textContent = fn ? "showing " + text : "";
      clear.hidden = !fn;
      if (fn) { document.getElementById("accounts-table").scrollIntoView({ block: "start" }); }
    }
    clear.addEventListener("click", function () { select("", null); });

    HS.identifiersTable = new Table(document.getElementById("identifiers-table"), {
      pageSize: 50, sortCol: 3, sortDir: -1,
      columns: [
        { key: 0, label: "kind", type: "text", text: function (r) { return kindLabel(r[0]); } },
        { key: 1, label: "identifier", type: "text" },
        { key: 2, label: "layer", type: "text" },
        { key: 3, label: "accounts here", type: "num" },
        { key: 4, label: "accounts overall", type: "num" },
        { key: 5, label: "pair weight", type: "num" },
        { key: 6, label: "hub", type: "bool" },
        { key: 7, label: "first seen", type: "text" },
        { key: 8, label: "last seen", type: "text" }
      ],
      rows: idents
    });

    var kindsShown = {};
    (g.inode_ids || []).forEach(function (k) { kindsShown[inodes[k][0]] = true; });
    legend(document.getElementById("graph-legend"), true, kindsShown);
    var nodes = [], edges = [];
    var big;
    if (g.mode === "detail") {
      big = nA + g.inode_ids.length > 1500;
      accounts.forEach(function (r, a) {
        var title = "Account " + r[C.account_id] + "\nscore " + fmt(r[C.score], "num")
          + (C.n_requests !== undefined && r[C.n_requests] !== null ? " \u00b7 " + r[C.n_requests] + " requests" : "")
          + "\nshares " + r[C.shared_identifiers] + " identifier(s) with other accounts of this cluster"
          + (r[C.linked_members] ? "\nlinked members by layer: " + r[C.linked_members] : "")
          + "\nclick to show it in the accounts table";
        nodes.push({ id: a, label: nA <= 300 ? short(r[C.account_id], 20) : undefined, title: title,
                     x: g.pos[a][0], y: g.pos[a][1], shape: "dot", size: 9,
                     color: { background: ACCOUNT_COLOR, border: "#8a4200" }, font: { size: 10 } });
      });
      var hidden = {};
      (g.hidden || []).forEach(function (j) { hidden[j] = true; });
      g.inode_ids.forEach(function (k, j) {
        var node = inodeNode(k, nA + j, g.pos[nA + j][0], g.pos[nA + j][1]);
        if (hidden[j]) { node.hidden = true; }
        nodes.push(node);
      });
      g.edges.forEach(function (e, k) {
        var n = inodes[g.inode_ids[e[1]]];
        var r = accounts[e[0]];
        var what = n[4] === 1 ? kindLabel(n[0]) + " " + idents[n[3][0]][1] : n[4] + " " + kindLabel(n[0]) + " identifiers";
        edges.push({ id: "i" + k, from: e[0], to: nA + e[1], color: { color: layerColor(n[1]), opacity: 0.55 }, width: 1,
                     title: "Account " + r[C.account_id] + " used " + what
                       + (e[2] !== null ? " in " + e[2] + " request(s)" : "")
                       + (e[3] ? ", " + e[3] + " \u2192 " + (e[4] || "") : "") + ".\n"
                       + (n[4] === 1 ? "It was used by " : "Each was used by the same ") + n[2]
                       + " account(s) of this cluster: a " + n[1] + "-layer link between them." });
      });
      // identifiers that exactly two members share: one direct edge per pair of accounts
      g.pairs.forEach(function (p, k) {
        var lines = ["Accounts " + accounts[p[0]][C.account_id] + " and " + accounts[p[1]][C.account_id]
                     + " share " + p[3] + " identifier(s) no other member of this cluster uses:"];
        p[4].forEach(function (ik) {
          var n = inodes[ik];
          n[3].forEach(function (i) { lines.push("  " + kindLabel(n[0]) + " " + short(idents[i][1], 80) + " (" + n[1] + " layer)"); });
          if (n[4] > n[3].length) { lines.push("  \u2026 and " + (n[4] - n[3].length) + " more " + kindLabel(n[0]) + " identifiers"); }
        });
        edges.push({ id: "p" + k, from: p[0], to: p[1], width: Math.min(6, 1 + Math.log(p[3]) / Math.LN2),
                     dashes: [4, 3], color: { color: layerColor(p[2]), opacity: 0.6 }, title: lines.join("\n") });
      });
    } else {
      var groups = g.groups;  // [strongest identifier node (index into all_inodes), -1 none, -2 other groups; count]
      var nG = groups.length;
      big = nG + g.inodes.length > 1500;
      groups.forEach(function (gr, k) {
        var label, title, border = "#555555";
        if (gr[0] >= 0) {
          label = inodeLabel(gr[0]) + " \u00d7" + gr[1];
          title = gr[1] + " account(s) whose strongest shared identifier is " + inodeText(gr[0])
            + "\n(" + inodes[gr[0]][1] + " layer, used by " + inodes[gr[0]][2] + " accounts of this cluster)";
          border = layerColor(inodes[gr[0]][1]);
        } else if (gr[0] === -1) {
          label = "no shared identifier \u00d7" + gr[1];
          title = gr[1] + " account(s) that share no (non-hub) identifier with another member";
        } else {
          label = "other groups \u00d7" + gr[1];
          title = gr[1] + " account(s) in smaller groups not drawn separately";
        }
        nodes.push({ id: k, label: label, title: title + "\nclick to list them in the accounts table",
                     x: g.pos[k][0], y: g.pos[k][1], shape: "dot", size: Math.min(60, 6 + 2 * Math.sqrt(gr[1])),
                     borderWidth: 3, color: { background: ACCOUNT_COLOR, border: border } });
      });
      g.inode_ids.forEach(function (k, j) { nodes.push(inodeNode(k, nG + j, g.pos[nG + j][0], g.pos[nG + j][1])); });
      g.edges.forEach(function (e, k) {
        var n = inodes[g.inode_ids[e[1]]];
        edges.push({ id: k, from: e[0], to: nG + e[1], width: 1 + Math.log(e[2]) / Math.LN2,
                     color: { color: layerColor(n[1]), opacity: 0.5 },
                     title: e[2] + " account(s) of this group used " + inodeText(g.inode_ids[e[1]]) + " (" + n[1] + " layer)" });
      });
    }
    var network = makeNetwork(document.getElementById("graph"), nodes, edges, big);
    if (!network) { return; }
    var showAll = document.getElementById("show-all");
    var nHidden = g.mode === "detail" ? (g.hidden || []).length : 0;
    if (showAll && nHidden) {
      showAll.parentNode.hidden = false;
      document.getElementById("n-hidden").textContent = String(nHidden);
      showAll.addEventListener("change", function () {
        HS.nodes.update(g.hidden.map(function (j) { return { id: nA + j, hidden: !showAll.checked }; }));
      });
    }
    var users = null;   // identifier node -> {account index: true}, built on first click
    function usersOf(k) {
      if (!users) {
        users = {};
        if (g.mode === "detail") {
          g.edges.forEach(function (e) { (users[e[1]] = users[e[1]] || {})[e[0]] = true; });
        }
      }
      return users[k] || {};
    }
    network.on("click", function (p) {
      if (!p.nodes || !p.nodes.length) { return; }
      var id = p.nodes[0];
      if (g.mode === "detail") {
        if (id < nA) {
          select("account " + accounts[id][C.account_id], function (r, i) { return i === id; });
        } else {
          var set = usersOf(id - nA);
          select("accounts that used " + inodeText(g.inode_ids[id - nA]), function (r, i) { return set[i] === true; });
        }
      } else if (id < g.groups.length) {
        var gr = g.groups[id];
        select(gr[1] + " account(s) of group " + (gr[0] >= 0 ? inodeText(gr[0]) : (gr[0] === -1 ? "\u201cno shared identifier\u201d" : "\u201cother groups\u201d")),
               function (r, i) { return g.account_group[i] === id; });
      } else {
        var key = g.inode_ids[id - g.groups.length];
        select("accounts whose strongest shared identifier is " + inodeText(key), function (r) { return r[C.group] === key; });
      }
    });
  }

  function start() {
    try {
      if (data.page === "index") { initIndex(); } else if (data.page === "cluster") { initCluster(); }
    } finally {
      if (!HS.network) { markReady(); }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
