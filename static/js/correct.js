// "Not a 4? It's a …": one click, or one digit key, tells the model the digit it got wrong.
// The correction carries the picture the model read (the server prepares it exactly as it did
// for the prediction); sending it never holds up drawing.

import { sendCorrection } from "./api.js";
import { a } from "./results.js";

const $ = (id) => document.getElementById(id);

export class CorrectionView {
  // imageOf(result, i): a Promise of the Blob the i-th digit of `result` was read from.
  constructor(imageOf) {
    this.imageOf = imageOf;
    this.root = $("correct");
    this.question = $("correct-question");
    this.status = $("correct-status");
    this.buttons = [];
    this.target = null; // {result, i}: the digit a correction would be about
    this.sent = new Map(); // preview data URL -> the label sent for it, so a repeat is not sent twice
    for (let d = 0; d < 10; d++) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = String(d);
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => this.correct(d));
      $("correct-digits").append(button);
      this.buttons.push(button);
    }
  }

  // Offer corrections for the i-th digit of a /predict/number answer.
  show(result, i) {
    const digit = result.digits[i];
    if (!digit) return this.clear();
    this.target = { result, i };
    const many = result.digits.length > 1;
    this.question.textContent = many
      ? `Digit ${i + 1} of ${result.number}: not ${a(digit.digit)}? It's a`
      : `Not ${a(digit.digit)}? It's a`;
    const said = this.sent.get(digit.preview);
    this.buttons.forEach((b, d) => {
      b.disabled = d === digit.digit;
      b.setAttribute("aria-pressed", String(d === said));
      b.setAttribute("aria-label", `It's ${a(d)}`);
    });
    this.#status(said === undefined ? "" : `Thanks: saved as ${a(said)}.`);
    this.root.hidden = false;
  }

  clear() {
    this.target = null;
    this.root.hidden = true;
    this.#status("");
  }

  // A digit key: a correction, when one is on offer and the key is not what the model said.
  key(d) {
    if (!this.target || this.buttons[d].disabled) return false;
    this.correct(d);
    return true;
  }

  async correct(label) {
    if (!this.target) return;
    const { result, i } = this.target;
    const digit = result.digits[i];
    if (this.sent.get(digit.preview) === label) return;
    this.sent.set(digit.preview, label);
    this.buttons.forEach((b, d) => b.setAttribute("aria-pressed", String(d === label)));
    this.#status(`Sending: it's ${a(label)}…`);
    try {
      const image = await dataUrl(await this.imageOf(result, i));
      await sendCorrection({ image, label, predicted: digit.digit });
      if (this.target?.result === result && this.target.i === i) {
        this.#status(`Thanks: saved as ${a(label)}. digitpad learns from corrections when it is next trained.`);
      }
    } catch (err) {
      this.sent.delete(digit.preview);
      if (this.target?.result === result && this.target.i === i) {
        this.buttons[label].setAttribute("aria-pressed", "false");
        this.#status(`The correction was not saved: ${err.message}`, "error");
      }
    }
  }

  #status(text, state = "") {
    this.status.textContent = text;
    this.status.dataset.state = state;
  }
}

function dataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("the picture could not be read"));
    reader.readAsDataURL(blob);
  });
}
