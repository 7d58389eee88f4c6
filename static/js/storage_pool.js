// Pool page: ask before destructive forms (data-confirm), also inside live-refreshed fragments.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
