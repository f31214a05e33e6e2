// A small live plot of the loss terms per step on a log scale (a plain 2D canvas; terms span many decades).

const SERIES = [
  { key: 'total', label: 'total', color: '#1f2328' },
  { key: 'content', label: 'content', color: '#2f5fb3' },
  { key: 'style', label: 'style', color: '#b3261e' },
  { key: 'tv', label: 'tv', color: '#1e6b35' },
];

/** Points kept per term. Past twice as many, they are merged down to this (min and max per bucket), so a
 *  100 000-step run holds and draws a bounded number while its spikes stay visible. */
const KEEP = 4096;

export class LossPlot {
  constructor(canvas) {
    this.canvas = canvas;
    this.clearData();
    this.scheduled = false;
  }

  clearData() {
    this.lines = SERIES.map(() => ({ steps: [], values: [] })); // per term, in SERIES order
    this.firstStep = null;
    this.lastStep = null;
  }

  clear() {
    this.clearData();
    this.draw();
  }

  add(losses) {
    if (this.firstStep === null) this.firstStep = losses.step;
    this.lastStep = losses.step;
    SERIES.forEach((s, i) => {
      const line = this.lines[i];
      line.steps.push(losses.step);
      line.values.push(losses[s.key]);
      if (line.values.length >= 2 * KEEP) this.lines[i] = downsampleMinMax(line.steps, line.values, KEEP);
    });
    // Redraw at most once a frame: steps can be faster than the screen at small sizes.
    if (!this.scheduled) {
      this.scheduled = true;
      requestAnimationFrame(() => {
        this.scheduled = false;
        this.draw();
      });
    }
  }

  draw() {
    const { canvas } = this;
    const ctx = canvas.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    const cssWidth = canvas.clientWidth || canvas.width;
    const cssHeight = Math.round(cssWidth * 0.375);
    if (canvas.width !== Math.round(cssWidth * dpr)) {
      canvas.width = Math.round(cssWidth * dpr);
      canvas.height = Math.round(cssHeight * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const w = canvas.width / dpr;
    const h = canvas.height / dpr;
    ctx.clearRect(0, 0, w, h);
    ctx.font = '11px system-ui, sans-serif';
    const left = 44, right = 8, top = 18, bottom = 18;
    const plotW = w - left - right;
    const plotH = h - top - bottom;

    // About two points per pixel column, and the range from a loop: spreading 400 000 values into
    // Math.min throws a RangeError.
    const lines = this.lines.map((l) => downsampleMinMax(l.steps, l.values, Math.max(2, 2 * Math.round(plotW))));
    let min = Infinity;
    let max = -Infinity;
    for (const line of lines) {
      for (const v of line.values) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    ctx.fillStyle = '#5f6670';
    if (!(min <= max)) {
      ctx.fillText('loss per step (log scale) appears here', left, top + plotH / 2);
      return;
    }
    let lo = Math.floor(Math.log10(min));
    let hi = Math.ceil(Math.log10(max));
    if (hi === lo) hi = lo + 1;
    const { firstStep } = this;
    const lastStep = Math.max(this.lastStep, firstStep + 1);
    const x = (step) => left + ((step - firstStep) / (lastStep - firstStep)) * plotW;
    const y = (v) => top + (1 - (Math.log10(v) - lo) / (hi - lo)) * plotH;

    // Decade grid lines and labels.
    ctx.strokeStyle = '#e4e1da';
    ctx.lineWidth = 1;
    const every = Math.max(1, Math.ceil((hi - lo) / 6));
    for (let d = lo; d <= hi; d += every) {
      const yy = y(10 ** d);
      ctx.beginPath();
      ctx.moveTo(left, yy);
      ctx.lineTo(left + plotW, yy);
      ctx.stroke();
      ctx.fillText(`1e${d}`, 4, yy + 4);
    }
    ctx.fillText(`step ${firstStep}`, left, h - 4);
    const lastLabel = `${this.lastStep}`;
    ctx.fillText(lastLabel, left + plotW - ctx.measureText(lastLabel).width, h - 4);

    // One line per term; a non-positive value (e.g. tv weight 0) breaks the line instead of faking it.
    let legendX = left;
    SERIES.forEach((s, i) => {
      const line = lines[i];
      ctx.strokeStyle = s.color;
      ctx.lineWidth = s.key === 'total' ? 2 : 1.3;
      ctx.beginPath();
      let pen = false;
      for (let j = 0; j < line.values.length; j++) {
        const v = line.values[j];
        if (Number.isNaN(v)) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(x(line.steps[j]), y(v));
        else ctx.moveTo(x(line.steps[j]), y(v));
        pen = true;
      }
      ctx.stroke();
      ctx.fillStyle = s.color;
      ctx.fillRect(legendX, 5, 10, 3);
      ctx.fillText(s.label, legendX + 13, 11);
      legendX += ctx.measureText(s.label).width + 28;
    });
  }
}

/**
 * At most `maxPoints` of (steps[i], values[i]), in step order: the smallest and the largest value of each
 * of maxPoints/2 buckets of consecutive steps, so a one-step spike stays visible. Values that a log scale
 * cannot show (≤ 0, NaN, ±Infinity) are gaps: NaN in the output, which breaks the line (a bucket that has
 * only gaps gives one). Works on plain and typed arrays of any length, never spreading them.
 */
export function downsampleMinMax(steps, values, maxPoints) {
  const n = values.length;
  const usable = (v) => v > 0 && Number.isFinite(v);
  const out = { steps: [], values: [] };
  if (n <= maxPoints) {
    for (let i = 0; i < n; i++) {
      out.steps.push(steps[i]);
      out.values.push(usable(values[i]) ? values[i] : NaN);
    }
    return out;
  }
  const buckets = Math.max(1, Math.floor(maxPoints / 2));
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * n) / buckets);
    const to = Math.floor(((b + 1) * n) / buckets);
    let lo = -1;
    let hi = -1;
    for (let i = from; i < to; i++) {
      const v = values[i];
      if (!usable(v)) continue;
      if (lo < 0 || v < values[lo]) lo = i;
      if (hi < 0 || v > values[hi]) hi = i;
    }
    if (lo < 0) {
      out.steps.push(steps[from]);
      out.values.push(NaN);
      continue;
    }
    for (const i of lo === hi ? [lo] : [Math.min(lo, hi), Math.max(lo, hi)]) {
      out.steps.push(steps[i]);
      out.values.push(values[i]);
    }
  }
  return out;
}
