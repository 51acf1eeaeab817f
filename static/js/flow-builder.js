// Flow builder: drag a node box to move it. The position is saved with the draft and the
// server draws the diagram again (arrows included); without this script nodes stay put and
// "Arrange automatically" still lays them out.
(() => {
  let drag = null;
  let swallowClickUntil = 0;

  document.addEventListener("pointerdown", (event) => {
    const box = event.target.closest(".canvas[data-move-url] .node");
    if (!box || event.button !== 0) return;
    drag = { box, x: event.clientX, y: event.clientY, left: box.offsetLeft, top: box.offsetTop, moved: false };
  });

  document.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 5) return; // a click, not a drag
    if (!drag.moved) {
      drag.moved = true;
      drag.box.classList.add("dragging");
    }
    drag.box.style.left = `${Math.max(0, drag.left + dx)}px`;
    drag.box.style.top = `${Math.max(0, drag.top + dy)}px`;
    event.preventDefault();
  });

  document.addEventListener("pointerup", () => {
    if (!drag) return;
    const { box, moved } = drag;
    drag = null;
    if (!moved) return;
    // The click that ends a drag must not open the node's form.
    swallowClickUntil = Date.now() + 400;
    const canvas = box.closest(".canvas");
    const url = canvas.dataset.moveUrl.replace("__node__", box.dataset.node);
    htmx.ajax("POST", url, {
      source: canvas,
      target: "#diagram",
      swap: "outerHTML",
      values: { x: parseInt(box.style.left, 10), y: parseInt(box.style.top, 10), selected: canvas.dataset.selected },
    });
  });

  document.addEventListener(
    "click",
    (event) => {
      if (Date.now() < swallowClickUntil && event.target.closest(".canvas .node")) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    { capture: true },
  );
})();
