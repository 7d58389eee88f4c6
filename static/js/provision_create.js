// New-guest wizard: show only the fields that apply to the chosen source and network.
const form = document.getElementById("wizard-form");

function field(name) {
  const input = form.querySelector(`[name="${name}"]`);
  return input ? input.closest("div") : null;
}

function value(name) {
  const checked = form.querySelector(`[name="${name}"]:checked`);
  if (checked) return checked.value;
  const input = form.querySelector(`select[name="${name}"]`);
  return input ? input.value : "";
}

function update() {
  const source = value("source");
  const show = (name, on) => { const el = field(name); if (el) el.hidden = !on; };
  if (form.querySelector('[name="source"]')) {
    show("source_path", ["iso", "import", "cloud"].includes(source));
    show("cloud_user", source === "cloud");
    show("ssh_key", source === "cloud");
  }
  if (form.querySelector('[name="network"]')) {
    show("network_name", value("network") === "network");
    show("bridge", value("network") === "bridge");
  }
}

if (form) {
  form.addEventListener("change", update);
  update();
}
