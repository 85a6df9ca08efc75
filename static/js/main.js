// digitpad's page: the board, live predictions, upload and the model panel, wired together.

import { Board } from "./board.js";
import { predictNumber } from "./api.js";
import { ResultView } from "./results.js";
import { InsideView } from "./inside.js";
import { CorrectionView } from "./correct.js";
import { renderModelPanel } from "./model-panel.js";

const $ = (id) => document.getElementById(id);
const LIVE_INTERVAL_MS = 150; // at most this often while a stroke is being drawn
const RETRY_MS = [1000, 2000, 4000, 8000];
const EXPORT_HEIGHT = 280; // pixels of the picture sent: a canvas export the size MNIST demos use

const board = new Board($("canvas"), { brush: Number($("brush").value) });
const view = new ResultView();
const inside = new InsideView();
const correction = new CorrectionView(digitImage);
const boardEl = $("drop-zone");
const uploadPreview = $("upload-preview");
$("origin").textContent = window.location.origin;

// --- predictions: newest wins, stale answers are dropped, failures retry by themselves

let source = null;     // what is on the board: null, "drawing" or a File
let sent = 0;          // number of the latest request sent
let shown = 0;         // number of the request whose answer is on screen
let liveTimer = null;
let retryTimer = null;
let retries = 0;

// What to send: an uploaded file as it is; a drawing as its picture and its strokes, so that
// digits drawn touching are still told apart by the strokes that made them.
function currentInput() {
  if (source instanceof Blob) return source;
  if (source === "drawing" && !board.empty) {
    return { image: board.toCanvas(EXPORT_HEIGHT).toDataURL("image/png"), ...board.toStrokes(EXPORT_HEIGHT) };
  }
  return null;
}

// Inside the model is for a finished stroke (it costs more than a prediction): a drawing that
// is still being drawn, or an answer for an older drawing, is not explained.
let settled = true;

async function lookInside(result, i) {
  const many = result.digits.length > 1;
  const label = many ? `digit ${i + 1} of ${result.number}` : "your drawing";
  inside.show(await digitImage(result, i), { label });
}

// The picture of the i-th digit the model read: an uploaded file as it was sent, the board's
// drawing, or for a digit of a number the part of either around it.
async function digitImage(result, i) {
  const many = result.digits.length > 1;
  if (!many && source instanceof Blob) return source;
  const image = source instanceof Blob ? await createImageBitmap(source) : board.toCanvas(EXPORT_HEIGHT);
  return cropToBlob(image, many ? result.digits[i].box : null);
}

// The image, or the part of it in `box` ([x, y, width, height]) with a margin, as a PNG.
function cropToBlob(image, box) {
  const [x, y, w, h] = box || [0, 0, image.width, image.height];
  const margin = box ? Math.round(0.15 * Math.max(w, h)) : 0;
  const out = document.createElement("canvas");
  out.width = w + 2 * margin;
  out.height = h + 2 * margin;
  out.getContext("2d").drawImage(image, x - margin, y - margin, out.width, out.height, 0, 0, out.width, out.height);
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
}

async function refresh() {
  clearTimeout(retryTimer);
  const input = currentInput();
  const id = ++sent;
  const explainAfter = settled; // a finished stroke or an upload, not a drawing in progress
  if (!input) {
    shown = id;
    view.clearError();
    view.empty();
    inside.clear();
    correction.clear();
    return;
  }
  if (shown === 0 || view.root.dataset.state !== "ready") view.loading();
  try {
    const result = await predictNumber(input);
    if (id < shown) return; // a newer answer is already on screen
    shown = id;
    retries = 0;
    view.clearError();
    view.show(result);
    correction.show(result, view.selected);
    if (explainAfter) lookInside(result, view.selected);
  } catch (err) {
    if (id < shown) return;
    shown = id;
    correction.clear();
    if (err.status === 422 && /no digit/i.test(err.message)) {
      view.clearError();
      view.noDigit();
    } else if (err.status >= 400 && err.status < 500) {
      view.empty("That image could not be read");
      view.showError(err.message);
    } else {
      // Server down or failing: say so, keep what was shown, and try again shortly.
      const wait = RETRY_MS[Math.min(retries++, RETRY_MS.length - 1)];
      view.showError(`${err.message}. Retrying in ${wait / 1000} s…`);
      if (view.root.dataset.state === "loading") view.empty("Waiting for the server");
      retryTimer = setTimeout(() => { if (id === sent) refresh(); }, wait);
    }
  }
}

function liveRefresh() {
  if (liveTimer) return;
  liveTimer = setTimeout(() => { liveTimer = null; settled = false; refresh(); }, LIVE_INTERVAL_MS);
}

function setSource(next) {
  source = next;
  const isFile = next instanceof Blob;
  if (!isFile && uploadPreview.src) {
    URL.revokeObjectURL(uploadPreview.src);
    uploadPreview.removeAttribute("src");
  }
  uploadPreview.hidden = !isFile;
  boardEl.classList.toggle("has-ink", next !== null);
  $("undo").disabled = board.strokes.length === 0;
}

board.addEventListener("strokestart", () => setSource("drawing")); // replaces an upload
board.addEventListener("drawing", liveRefresh);
board.addEventListener("change", () => {
  setSource(board.empty ? null : "drawing");
  clearTimeout(liveTimer);
  liveTimer = null;
  settled = true;
  refresh();
});
view.onselect = (result, i) => {
  correction.show(result, i);
  lookInside(result, i);
};

// --- tools

function clearAll() {
  board.clear();
  setSource(null);
  refresh();
}

$("brush").addEventListener("input", (e) => {
  board.brush = Number(e.target.value);
  $("brush-value").value = e.target.value;
});
$("undo").addEventListener("click", () => board.undo());
$("clear").addEventListener("click", clearAll);
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement && e.target.type !== "range") return;
  if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z") {
    e.preventDefault();
    board.undo();
  } else if (e.key === "Escape" || e.key === "Delete") {
    clearAll();
  } else if (/^[0-9]$/.test(e.key) && !e.ctrlKey && !e.metaKey && !e.altKey) {
    if (correction.key(Number(e.key))) e.preventDefault();
  }
});

function useFile(file) {
  if (!file) return;
  board.clear();
  setSource(file);
  uploadPreview.src = URL.createObjectURL(file);
  settled = true;
  refresh();
}
$("file").addEventListener("change", (e) => {
  useFile(e.target.files[0]);
  e.target.value = "";
});
boardEl.addEventListener("dragover", (e) => {
  e.preventDefault();
  boardEl.classList.add("dragging");
});
boardEl.addEventListener("dragleave", () => boardEl.classList.remove("dragging"));
boardEl.addEventListener("drop", (e) => {
  e.preventDefault();
  boardEl.classList.remove("dragging");
  useFile(e.dataTransfer.files[0]);
});

// Redraw in the right ink colour when the system switches between light and dark.
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => board.redraw());

setSource(null);
view.empty();
renderModelPanel().then((ok) => document.body.dataset.modelPanel = ok ? "ready" : "failed");
document.body.dataset.ready = "true";
