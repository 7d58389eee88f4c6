// Edit page: move boot devices up and down (the order of checked boxes is the boot order).
const list = document.getElementById("boot-list");
if (list) {
  list.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-move]");
    if (!button) return;
    const item = button.closest("li");
    if (button.dataset.move === "up" && item.previousElementSibling) item.previousElementSibling.before(item);
    if (button.dataset.move === "down" && item.nextElementSibling) item.nextElementSibling.after(item);
    button.focus();
  });
}
