// The prediction panel: the digit, its confidence, ten bars and the 28x28 image the model saw.

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
    this.rows = [];
    for (let d = 0; d < 10; d++) {
      const li = document.createElement("li");
      li.innerHTML = `<span class="label">${d}</span><span class="track"><span class="fill"></span></span><span class="pct">0%</span>`;
      li.setAttribute("aria-label", `${d}: 0%`);
      this.bars.append(li);
      this.rows.push({ li, fill: li.querySelector(".fill"), pct: li.querySelector(".pct") });
    }
  }

  empty(message = "Draw a digit") {
    this.root.dataset.state = "empty";
    this.digit.textContent = "?";
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

  show({ digit, confidence, probabilities, preview }) {
    this.root.dataset.state = "ready";
    this.digit.textContent = String(digit);
    this.status.innerHTML = "";
    const strong = document.createElement("strong");
    strong.textContent = `It's a ${digit}`;
    this.status.append(strong, ` · ${formatPct(confidence)} sure`);
    this.preview.src = preview;
    this.preview.hidden = false;
    this.previewEmpty.hidden = true;
    this.#bars(probabilities, digit);
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
