// The prediction panel: the number (or digit), how sure, and for the chosen digit its ten bars
// and the 28x28 image the model saw. A number's digits are buttons: choose one to see it.

const $ = (id) => document.getElementById(id);

export class ResultView {
  constructor() {
    this.root = $("result");
    this.digit = $("digit");
    this.status = $("status");
    this.preview = $("preview");
    this.previewEmpty = $("preview-empty");
    this.error = $("error");
    this.bars = $("bars");
    this.chips = $("chips");
    this.caption = $("preview-caption");
    this.barsTitle = $("bars-title");
    this.digits = [];
    this.result = null;
    this.selected = 0;
    this.onselect = null; // called with (result, i) when a person chooses a digit of a number
    this.rows = [];
    for (let d = 0; d < 10; d++) {
      const li = document.createElement("li");
      li.innerHTML = `<span class="label">${d}</span><span class="track"><span class="fill"></span></span><span class="pct">0%</span>`;
      li.setAttribute("aria-label", `${d}: 0%`);
      this.bars.append(li);
      this.rows.push({ li, fill: li.querySelector(".fill"), pct: li.querySelector(".pct") });
    }
  }

  empty(message = "Draw a digit or a number") {
    this.root.dataset.state = "empty";
    this.digits = [];
    this.#chips([]);
    this.digit.textContent = "?";
    this.digit.dataset.length = "1";
    this.status.textContent = message;
    this.preview.hidden = true;
    this.previewEmpty.hidden = false;
    this.#bars(new Array(10).fill(0), -1);
  }

  noDigit() {
    this.empty("No digit found yet: draw a little more");
    this.root.dataset.state = "nodigit";
  }

  loading() {
    this.root.dataset.state = "loading";
    this.status.textContent = "Thinking…";
  }

  // A /predict/number answer. One digit shows exactly as a single prediction does.
  show(result) {
    const { number, confidence, digits } = result;
    this.root.dataset.state = "ready";
    this.result = result;
    this.digits = digits;
    this.digit.textContent = number;
    this.digit.dataset.length = String(Math.min(number.length, 9));
    this.status.innerHTML = "";
    const strong = document.createElement("strong");
    strong.textContent = digits.length === 1 ? `It's ${a(digits[0].digit)}` : `It's ${number}`;
    this.status.append(strong, ` · ${formatPct(confidence)} sure`);
    this.#chips(digits);
    this.select(0, { quietly: true });
  }

  // Show the i-th digit's probabilities and what the model saw of it.
  select(i, { quietly = false } = {}) {
    const d = this.digits[i];
    if (!d) return;
    const changed = i !== this.selected;
    this.selected = i;
    if (!quietly && changed && this.onselect) this.onselect(this.result, i);
    const many = this.digits.length > 1;
    this.chips.querySelectorAll("button").forEach((b, j) => b.setAttribute("aria-pressed", String(j === i)));
    this.preview.src = d.preview;
    this.preview.alt = many ? `Digit ${i + 1} of ${this.digits.length} as the model saw it, 28 by 28`
      : "The 28 by 28 image the model saw";
    this.preview.hidden = false;
    this.previewEmpty.hidden = true;
    this.caption.textContent = many ? `Digit ${i + 1} of ${this.digits.length}, as the model saw it` : "What the model saw (28×28)";
    this.barsTitle.textContent = many ? `Probabilities for digit ${i + 1} of ${this.digits.length}: ${a(d.digit)}` : "";
    this.barsTitle.hidden = !many;
    this.#bars(d.probabilities, d.digit);
  }

  #chips(digits) {
    this.chips.replaceChildren();
    this.chips.hidden = digits.length < 2;
    if (digits.length < 2) return;
    digits.forEach((d, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "chip";
      button.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-label", `Digit ${i + 1}: ${d.digit}, ${formatPct(d.confidence)} sure`);
      const value = document.createElement("span");
      value.className = "chip-digit";
      value.textContent = String(d.digit);
      const pct = document.createElement("span");
      pct.className = "chip-pct";
      pct.textContent = formatPct(d.confidence);
      button.append(value, pct);
      button.addEventListener("click", () => this.select(i));
      button.addEventListener("focus", () => this.select(i));
      this.chips.append(button);
    });
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = false;
  }

  clearError() {
    this.error.hidden = true;
    this.error.textContent = "";
  }

  #bars(probabilities, top) {
    probabilities.forEach((p, d) => {
      const row = this.rows[d];
      row.fill.style.width = `${(p * 100).toFixed(1)}%`;
      row.pct.textContent = formatPct(p);
      row.li.classList.toggle("top", d === top);
      row.li.setAttribute("aria-label", `${d}: ${formatPct(p)}`);
    });
  }
}

export function formatPct(p) {
  if (p >= 0.9995) return "100%";
  if (p > 0 && p < 0.001) return "<0.1%";
  return `${(p * 100).toFixed(p >= 0.1 ? 0 : 1)}%`;
}

// "a 7", "an 8"
export function a(digit) {
  return `${digit === 8 ? "an" : "a"} ${digit}`;
}
