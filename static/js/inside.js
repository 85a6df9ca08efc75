// "Inside the model": for the drawing (or the chosen digit of a number), how it was prepared,
// what each layer of the network saw, and which pixels pushed the answer which way.

import { explain } from "./api.js";
import { a } from "./results.js";

const $ = (id) => document.getElementById(id);

export class InsideView {
  constructor() {
    this.root = $("inside");
    this.status = $("inside-status");
    this.stages = $("inside-stages");
    this.layers = $("inside-layers");
    this.overlay = $("inside-overlay");
    this.field = $("inside-field");
    this.toggle = $("inside-toggle");
    this.explainer = $("inside-attribution-text");
    this.features = $("inside-features");
    this.targets = [];
    this.sent = 0;
  }

  clear(message = "Draw a digit, and when you lift the pen you can look inside the model here.") {
    this.sent++;
    this.root.dataset.state = "empty";
    this.status.textContent = message;
  }

  // Explain one image (a Blob). Newest wins: an older answer arriving late is dropped.
  async show(image, { label = "your drawing" } = {}) {
    const id = ++this.sent;
    this.root.dataset.state = "loading";
    this.status.textContent = `Looking inside the model at ${label}…`;
    let answer;
    try {
      answer = await explain(image);
    } catch (err) {
      if (id !== this.sent) return;
      this.root.dataset.state = "empty";
      this.status.textContent = err.status === 422 ? "No digit to look at yet." : `Could not look inside: ${err.message}`;
      return;
    }
    if (id !== this.sent) return;
    this.#render(answer, label);
  }

  #render(answer, label) {
    this.root.dataset.state = "ready";
    this.status.textContent = `How the model read ${label} as ${a(answer.digit)}, step by step.`;
    this.stages.replaceChildren(...answer.stages.map((stage, i) => figure(
      stage.image, `Step ${i + 1}: ${stage.caption}`, `${i + 1}. ${stage.caption}`, "stage")));
    this.layers.replaceChildren(...answer.layers.map((layer, i) => {
      const [c, h, w] = layer.shape;
      const text = `Layer ${i + 1} (${layer.name}): ${layer.caption}. Bright means the filter found its pattern there.`;
      return figure(layer.image, `${text} ${c} maps of ${h}×${w} pixels.`, `Layer ${i + 1}: ${c} maps, ${h}×${w}`, "layer");
    }));
    this.features.textContent = `${answer.features.caption} The scores it gives each digit, before they are turned ` +
      `into probabilities: ${answer.features.logits.map((v, d) => `${d}: ${v.toFixed(1)}`).join(", ")}.`;
    this.targets = answer.attribution.targets;
    this.toggle.replaceChildren(...this.targets.map((t, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = i === 0 ? `Why ${a(t.digit)}?` : `Why not ${a(t.digit)}?`;
      button.setAttribute("aria-pressed", String(i === 0));
      button.addEventListener("click", () => this.#attribution(i));
      return button;
    }));
    this.#attribution(0);
  }

  #attribution(i) {
    const t = this.targets[i];
    this.toggle.querySelectorAll("button").forEach((b, j) => b.setAttribute("aria-pressed", String(i === j)));
    const why = `towards ${a(t.digit)}, ${i === 0 ? "the answer" : "the runner-up"}`;
    this.overlay.src = t.drawing;
    this.overlay.alt = `Your drawing, coloured by how much each part pushed the model ${why}: orange for, blue against.`;
    this.field.src = t.field;
    this.field.alt = `The same on the 28 by 28 image the model saw.`;
    this.explainer.textContent = `Orange parts pushed the model ${why}; blue parts pushed it away. ` +
      `Added up they make the ${t.digit}'s score ${t.logit_difference.toFixed(2)} higher than for an empty image ` +
      `(they add up to ${t.sum.toFixed(2)}; Integrated Gradients).`;
  }
}

function figure(src, alt, caption, className) {
  const fig = document.createElement("figure");
  fig.className = className;
  const img = document.createElement("img");
  img.src = src;
  img.alt = alt;
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(img, cap);
  return fig;
}
