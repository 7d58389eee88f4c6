// Raw XML editor: a textarea over a highlighted copy. Tokens are built with textContent only.
const area = document.getElementById("id_xml");
const out = document.getElementById("xml-highlight");

const TOKEN = /(<!--[\s\S]*?-->)|(<\/?[\w:.-]+)|([\w:.-]+)(=)("[^"]*"|'[^']*')|(\/?>)/g;

function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

function render() {
  const text = area.value;
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    if (m.index > last) frag.append(document.createTextNode(text.slice(last, m.index)));
    if (m[1]) frag.append(span("xml-comment", m[1]));
    else if (m[2]) frag.append(span("xml-tag", m[2]));
    else if (m[3]) frag.append(span("xml-attr", m[3]), document.createTextNode(m[4]), span("xml-value", m[5]));
    else frag.append(span("xml-tag", m[6]));
    last = m.index + m[0].length;
  }
  frag.append(document.createTextNode(text.slice(last) + "\n"));
  out.replaceChildren(frag);
}

function sync() {
  out.parentElement.scrollTop = area.scrollTop;
  out.parentElement.scrollLeft = area.scrollLeft;
}

if (area && out) {
  area.addEventListener("input", render);
  area.addEventListener("scroll", sync);
  area.addEventListener("keydown", (e) => {
    if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey) {  // indent; Esc then Tab leaves the field
      e.preventDefault();
      area.setRangeText("  ", area.selectionStart, area.selectionEnd, "end");
      render();
    } else if (e.key === "Escape") {
      area.blur();
    }
  });
  render();
}
