// Copy buttons: <button data-copy="#element-id">Copy</button> copies that element's text.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  const done = () => {
    button.textContent = "Copied";
    button.setAttribute("aria-live", "polite");
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {
    // Plain-http pages (the dev server) have no Clipboard API: select and copy.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
    done();
  }
});

// The pages run under a Content-Security-Policy without 'unsafe-inline' or 'unsafe-eval': no
// onclick="" or style="" in templates, no htmx hx-on or trigger filters. What they did is here,
// keyed on data attributes.

// <form data-confirm="Stop it?">: asks before the form is sent.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset?.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// <select data-submit-on-change>: a choice sends its form (the contact-center switcher).
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-submit-on-change]")) event.target.form.requestSubmit();
});

// <form data-search-asks-on-input>: its search box asks as you type (hx-trigger "input … from:
// input[type=search]"); the `change` it fires on leaving would ask again, and that late answer
// (page one) would replace a page a click had brought meanwhile. Dropped before htmx sees it.
document.addEventListener(
  "change",
  (event) => {
    if (event.target.type === "search" && event.target.closest("form[data-search-asks-on-input]")) {
      event.stopPropagation();
    }
  },
  { capture: true },
);

// Inside data-swap-refused, a 400 answer (a refused filter, its errors rendered) is swapped in
// like a 200 rather than dropped as an error.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 400 && event.target.closest("[data-swap-refused]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Sizes and positions the server computed (progress bars, the flow diagram's canvas and boxes):
// data-place-left/top/width/height="120px". The policy refuses style="" attributes, not styles set
// from script. On the page and on every fragment htmx swaps in.
const PLACED = { placeLeft: "left", placeTop: "top", placeWidth: "width", placeHeight: "height" };
const PLACED_SELECTOR = "[data-place-left], [data-place-top], [data-place-width], [data-place-height]";

htmx.onLoad((root) => {
  if (!(root instanceof Element)) return;
  const elements = [...root.querySelectorAll(PLACED_SELECTOR)];
  if (root.matches(PLACED_SELECTOR)) elements.push(root);
  for (const element of elements) {
    for (const [key, property] of Object.entries(PLACED)) {
      if (key in element.dataset) element.style[property] = element.dataset[key];
    }
  }
});
