// A small live plot of the loss terms per step on a log scale (a plain 2D canvas; terms span many decades).

const SERIES = [
  { key: 'total', label: 'total', color: '#1f2328' },
  { key: 'content', label: 'content', color: '#2f5fb3' },
  { key: 'style', label: 'style', color: '#b3261e' },
  { key: 'tv', label: 'tv', color: '#1e6b35' },
];

export class LossPlot {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = []; // {step, content, style, tv, total}
    this.scheduled = false;
  }

  clear() {
    this.points = [];
    this.draw();
  }

  add(losses) {
    this.points.push(losses);
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

    const positive = [];
    for (const p of this.points) for (const s of SERIES) if (p[s.key] > 0 && Number.isFinite(p[s.key])) positive.push(p[s.key]);
    ctx.fillStyle = '#5f6670';
    if (positive.length === 0) {
      ctx.fillText('loss per step (log scale) appears here', left, top + plotH / 2);
      return;
    }
    let lo = Math.floor(Math.log10(Math.min(...positive)));
    let hi = Math.ceil(Math.log10(Math.max(...positive)));
    if (hi === lo) hi = lo + 1;
    const firstStep = this.points[0].step;
    const lastStep = Math.max(this.points[this.points.length - 1].step, firstStep + 1);
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
    const lastLabel = `${this.points[this.points.length - 1].step}`;
    ctx.fillText(lastLabel, left + plotW - ctx.measureText(lastLabel).width, h - 4);

    // One line per term; a non-positive value (e.g. tv weight 0) breaks the line instead of faking it.
    let legendX = left;
    for (const s of SERIES) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = s.key === 'total' ? 2 : 1.3;
      ctx.beginPath();
      let pen = false;
      for (const p of this.points) {
        const v = p[s.key];
        if (!(v > 0) || !Number.isFinite(v)) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(x(p.step), y(v));
        else ctx.moveTo(x(p.step), y(v));
        pen = true;
      }
      ctx.stroke();
      ctx.fillStyle = s.color;
      ctx.fillRect(legendX, 5, 10, 3);
      ctx.fillText(s.label, legendX + 13, 11);
      legendX += ctx.measureText(s.label).width + 28;
    }
  }
}
