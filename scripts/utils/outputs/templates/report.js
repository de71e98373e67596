(function () {
  "use strict";
  document.documentElement.classList.add("js");
  function key(body, index) {
    var cell = body.rows[0].cells[index];
    var sort = cell.getAttribute("data-sort");
    return sort === null ? cell.textContent : Number(sort);
  }
  function sortBy(table, th, index) {
    var numeric = th.classList.contains("num");
    var now = th.getAttribute("aria-sort");
    var down = now ? now === "ascending" : numeric;
    Array.prototype.forEach.call(th.parentNode.cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    var bodies = Array.prototype.slice.call(table.tBodies);
    bodies.sort(function (a, b) {
      var x = key(a, index), y = key(b, index);
      var order = numeric ? x - y : String(x).localeCompare(String(y));
      return down ? -order : order;
    });
    bodies.forEach(function (body) { table.appendChild(body); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      if (th.classList.contains("nosort")) { return; }
      th.classList.add("sorter");
      th.tabIndex = 0;
      th.title = "sort by this column";
      th.addEventListener("click", function () { sortBy(table, th, index); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortBy(table, th, index);
        }
      });
    });
  });
  var overlay = document.createElement("div");
  overlay.className = "overlay";
  overlay.hidden = true;
  var caption = document.createElement("p");
  overlay.appendChild(caption);
  document.body.appendChild(overlay);
  function close() {
    overlay.hidden = true;
    var big = overlay.querySelector("img");
    if (big) { overlay.removeChild(big); }
  }
  overlay.addEventListener("click", close);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { close(); }
  });
  document.querySelectorAll("img.plot").forEach(function (img) {
    img.addEventListener("click", function () {
      close();
      var big = document.createElement("img");
      big.src = img.src;
      big.alt = img.alt;
      overlay.insertBefore(big, caption);
      caption.textContent = img.alt + " (full size; click or Esc to close)";
      overlay.hidden = false;
    });
  });
})();
