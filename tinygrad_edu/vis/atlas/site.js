// A layer page of the atlas: sort the grid of filters and show one filter larger.
// The state lives in the address's fragment, e.g. "#sort=index&filter=7", so every view
// can be linked to and the browser's back button steps through it.
"use strict";
(() => {
  const grid = document.getElementById("grid");
  const controls = document.getElementById("controls");
  const dialog = document.getElementById("detail");
  const title = document.getElementById("detail-title");
  const body = document.getElementById("detail-body");
  const buttons = [...controls.querySelectorAll("button[data-sort]")];
  const tiles = [...grid.children];
  const activation = (tile) => Number(tile.dataset.activation);
  const index = (tile) => Number(tile.dataset.filter);
  const ORDERS = {
    "activation-desc": (a, b) => activation(b) - activation(a) || index(a) - index(b),
    "activation-asc": (a, b) => activation(a) - activation(b) || index(a) - index(b),
    index: (a, b) => index(a) - index(b),
  };
  const DEFAULT_ORDER = "activation-desc";
  let shownOrder = DEFAULT_ORDER; // the order the page is written in

  const state = () => new URLSearchParams(location.hash.slice(1));

  function update(changes) {
    const params = state();
    for (const [key, value] of Object.entries(changes)) {
      if (value === null) params.delete(key);
      else params.set(key, value);
    }
    location.hash = params.toString();
  }

  function sortBy(order) {
    if (order !== shownOrder) {
      tiles.sort(ORDERS[order]);
      grid.append(...tiles);
      shownOrder = order;
    }
    for (const button of buttons) {
      button.setAttribute("aria-pressed", String(button.dataset.sort === order));
    }
  }

  function show(tile) {
    title.textContent = tile.querySelector("img").alt;
    body.replaceChildren(tile.querySelector("template").content.cloneNode(true));
    if (!dialog.open) dialog.showModal();
  }

  function route() {
    const params = state();
    const order = params.get("sort");
    sortBy(Object.hasOwn(ORDERS, order) ? order : DEFAULT_ORDER);
    const tile = params.has("filter") && document.getElementById(`filter-${params.get("filter")}`);
    if (tile) show(tile);
    else if (dialog.open) dialog.close();
  }

  function step(offset) {
    const current = document.getElementById(`filter-${state().get("filter")}`);
    const next = current && (offset < 0 ? current.previousElementSibling : current.nextElementSibling);
    if (next) update({ filter: next.dataset.filter });
  }

  function outside(event) {
    // a click on the backdrop reaches the dialog itself, outside its box
    const box = dialog.getBoundingClientRect();
    const { clientX: x, clientY: y } = event;
    return event.target === dialog && (x < box.left || x > box.right || y < box.top || y > box.bottom);
  }

  controls.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-sort]");
    if (button) update({ sort: button.dataset.sort });
  });
  grid.addEventListener("click", (event) => {
    const link = event.target.closest("a");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    update({ filter: link.parentElement.dataset.filter });
  });
  dialog.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-step]");
    if (button) step(Number(button.dataset.step));
    else if (event.target.closest("button[data-close]") || outside(event)) dialog.close();
  });
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft") step(-1);
    if (event.key === "ArrowRight") step(1);
  });
  dialog.addEventListener("close", () => {
    if (state().has("filter")) update({ filter: null });
  });
  window.addEventListener("hashchange", route);
  controls.hidden = false;
  route();
})();
