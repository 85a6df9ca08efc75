// The operator's review of corrections: thumbnails with label and prediction, delete, export.
// The token is asked for once and kept in this tab's sessionStorage; every call sends it.

const $ = (id) => document.getElementById(id);
const PAGE = 48;
let offset = 0;

const token = () => sessionStorage.getItem("digitpad-token");

async function call(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { Authorization: `Bearer ${token()}` } });
  if (response.status === 401) {
    sessionStorage.removeItem("digitpad-token");
    $("login").hidden = false;
    throw new Error("That token was not accepted.");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.error || `The server answered ${response.status}`);
  }
  return response;
}

function card(c) {
  const li = document.createElement("li");
  li.className = "correction";
  const img = document.createElement("img");
  img.src = c.field;
  img.width = img.height = 56;
  img.alt = `Correction ${c.id}: a ${c.label}`;
  const text = document.createElement("p");
  text.textContent = `Label ${c.label}` + (c.predicted === null ? "" : ` · model said ${c.predicted}`);
  const when = document.createElement("small");
  when.textContent = `#${c.id} · ${c.created_at.replace("T", " ").slice(0, 16)} · model ${c.model_version}`;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete correction ${c.id}`);
  remove.addEventListener("click", async () => {
    try {
      await call(`/api/corrections/${c.id}`, { method: "DELETE" });
      li.remove();
      $("review-status").textContent = `Deleted correction ${c.id}.`;
    } catch (err) {
      $("review-status").textContent = err.message;
    }
  });
  li.append(img, text, when, remove);
  return li;
}

async function show() {
  try {
    const page = await (await call(`/api/corrections?limit=${PAGE}&offset=${offset}`)).json();
    $("login").hidden = true;
    $("review-tools").hidden = false;
    $("corrections").replaceChildren(...page.corrections.map(card));
    const last = Math.min(offset + page.corrections.length, page.total);
    $("review-status").textContent = page.total
      ? `${page.total} corrections; showing ${offset + 1}–${last}, newest first.` : "No corrections yet.";
    $("prev").disabled = offset === 0;
    $("next").disabled = last >= page.total;
  } catch (err) {
    $("review-status").textContent = err.message;
  }
}

async function download(format) {
  try {
    const blob = await (await call(`/api/corrections/export?format=${format}`)).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `digitpad-corrections.${format === "idx" ? "zip" : "npz"}`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  } catch (err) {
    $("review-status").textContent = err.message;
  }
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("digitpad-token", $("token").value);
  show();
});
$("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); show(); });
$("next").addEventListener("click", () => { offset += PAGE; show(); });
$("export-npz").addEventListener("click", () => download("npz"));
$("export-idx").addEventListener("click", () => download("idx"));
if (token()) show();
document.body.dataset.ready = "true";
