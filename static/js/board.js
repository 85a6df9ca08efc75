// The drawing board: pointer input (mouse, touch, pen), smooth strokes, undo, crisp on any DPI.
// Strokes are stored in units of the board's height (0..1 down, 0..aspect across), so resizing
// redraws them exactly; each point keeps the time it was drawn, in ms since the stroke began.

export class Board extends EventTarget {
  constructor(canvas, { brush = 14 } = {}) {
    super();
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.strokes = [];
    this.current = null;
    this.brush = brush; // CSS pixels on a board 360 px high; scales with the board
    this.size = 1;      // the board's height in CSS pixels
    this.aspect = 1;    // its width over its height
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
    canvas.addEventListener("pointerdown", (e) => this.#down(e));
    canvas.addEventListener("pointermove", (e) => this.#move(e));
    canvas.addEventListener("pointerup", (e) => this.#up(e));
    canvas.addEventListener("pointercancel", (e) => this.#up(e));
    // Belt and braces next to touch-action: none, for browsers that still scroll.
    canvas.addEventListener("touchmove", (e) => e.preventDefault(), { passive: false });
  }

  get empty() { return this.strokes.length === 0 && !this.current; }

  resize() {
    const rect = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.size = Math.max(1, rect.height);
    this.aspect = rect.width / this.size || 1;
    this.canvas.width = Math.round(rect.width * dpr);
    this.canvas.height = Math.round(rect.height * dpr);
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.redraw();
  }

  undo() {
    if (this.strokes.pop()) this.#changed("undo");
  }

  clear() {
    if (this.strokes.length) {
      this.strokes = [];
      this.#changed("clear");
    }
  }

  redraw() {
    const { ctx } = this;
    ctx.clearRect(0, 0, this.size * this.aspect, this.size);
    ctx.strokeStyle = ctx.fillStyle = getComputedStyle(this.canvas).getPropertyValue("--ink") || "#111";
    for (const stroke of this.strokes) drawStroke(ctx, stroke, this.size);
    if (this.current) drawStroke(ctx, this.current, this.size);
  }

  // The drawing as a PNG with a transparent background, `height` pixels high: exactly what a
  // canvas exports.
  toCanvas(height = 280) {
    const out = document.createElement("canvas");
    out.height = height;
    out.width = Math.round(height * this.aspect);
    const ctx = out.getContext("2d");
    ctx.strokeStyle = ctx.fillStyle = "#000";
    for (const stroke of this.#all()) drawStroke(ctx, stroke, height);
    return out;
  }

  toBlob(height = 280) {
    return new Promise((resolve) => this.toCanvas(height).toBlob(resolve, "image/png"));
  }

  // The strokes as /predict/number takes them, in the pixels of toCanvas(height).
  toStrokes(height = 280) {
    const all = this.#all();
    return {
      canvas: { width: Math.round(height * this.aspect), height },
      brush: Math.max(...all.map((s) => s.width)) * height,
      strokes: all.map((s) => s.points.map(([x, y, t]) => [x * height, y * height, t])),
    };
  }

  #all() {
    return this.current ? [...this.strokes, this.current] : this.strokes;
  }

  #point(e) {
    const rect = this.canvas.getBoundingClientRect();
    const t = this.current ? Math.round(e.timeStamp - this.current.started) : 0;
    return [(e.clientX - rect.left) / rect.height, (e.clientY - rect.top) / rect.height, t];
  }

  #down(e) {
    if (e.button !== 0 && e.pointerType === "mouse") return;
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.current = { width: this.brush / 360, started: e.timeStamp, points: [] };
    this.current.points.push(this.#point(e));
    this.redraw();
    this.dispatchEvent(new Event("strokestart"));
  }

  #move(e) {
    if (!this.current) return;
    e.preventDefault();
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of events.length ? events : [e]) this.current.points.push(this.#point(ev));
    this.redraw();
    this.dispatchEvent(new Event("drawing"));
  }

  #up(e) {
    if (!this.current) return;
    this.strokes.push(this.current);
    this.current = null;
    if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    this.redraw();
    this.#changed("stroke");
  }

  #changed(reason) {
    this.redraw();
    this.dispatchEvent(new CustomEvent("change", { detail: { reason } }));
  }
}

// A smooth curve through the sampled points: quadratic segments between midpoints,
// round caps and joins. A single tap is a dot.
function drawStroke(ctx, { width, points }, size) {
  const p = points.map(([x, y]) => [x * size, y * size]);
  ctx.lineWidth = width * size;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (p.length === 1) {
    ctx.beginPath();
    ctx.arc(p[0][0], p[0][1], (width * size) / 2, 0, Math.PI * 2);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(p[0][0], p[0][1]);
  for (let i = 1; i < p.length - 1; i++) {
    const mx = (p[i][0] + p[i + 1][0]) / 2;
    const my = (p[i][1] + p[i + 1][1]) / 2;
    ctx.quadraticCurveTo(p[i][0], p[i][1], mx, my);
  }
  const last = p[p.length - 1];
  ctx.lineTo(last[0], last[1]);
  ctx.stroke();
}
