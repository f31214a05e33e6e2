// The style-strength slider: one control on a log scale of the style/content weight ratio β/α, as in
// in-browser style apps. It writes the style weight into the form (the numeric weights stay the values
// of record, and share links carry them exactly), and it follows the form when they change.

/** The slider spans the default ratio ×10^-DECADES … ×10^DECADES. */
export const DECADES = 2;

/** The slider's position for weights α and β: log10 of β/α relative to the default ratio, clamped to
 *  the slider's range; null when the ratio is not a positive number (α or β zero, or not numbers). */
export function strengthOf(alpha, beta, defaultRatio) {
  const ratio = beta / alpha;
  if (!(alpha > 0) || !(beta > 0) || !Number.isFinite(ratio) || !(defaultRatio > 0)) return null;
  return Math.min(DECADES, Math.max(-DECADES, Math.log10(ratio / defaultRatio)));
}

/** The style weight that puts β/α at `position` (3 significant digits, so that links stay short). */
export function styleWeightAt(alpha, position, defaultRatio) {
  return Number((alpha * defaultRatio * 10 ** position).toPrecision(3));
}

/** "×0.1", "×1", "×31.6": the strength relative to the default. */
export function strengthLabel(position) {
  return `×${Number((10 ** position).toPrecision(position < 0 ? 2 : 3))}`;
}

/** Wires the slider to the form's content and style weight fields. `changed()` runs after the slider
 *  writes a weight. Returns `sync()`, which moves the slider to the form's weights. */
export function setupStrength({ slider, output, alphaInput, betaInput, defaults, changed }) {
  const defaultRatio = defaults.style_weight / defaults.content_weight;
  slider.min = String(-DECADES);
  slider.max = String(DECADES);
  slider.step = '0.05';
  const sync = () => {
    const position = strengthOf(Number(alphaInput.value), Number(betaInput.value), defaultRatio);
    slider.disabled = position === null || alphaInput.disabled;
    slider.title = position === null
      ? 'Needs a content weight and a style weight above 0 (see the numeric weights below)'
      : `Style weight / content weight = ${Number((Number(betaInput.value) / Number(alphaInput.value)).toPrecision(3))}`;
    if (position === null) {
      output.textContent = '–';
      return;
    }
    slider.value = String(position);
    output.textContent = strengthLabel(position);
  };
  slider.addEventListener('input', () => {
    const alpha = Number(alphaInput.value);
    if (!(alpha > 0)) return;
    betaInput.value = String(styleWeightAt(alpha, Number(slider.value), defaultRatio));
    changed();
  });
  sync();
  return sync;
}
