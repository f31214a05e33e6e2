// The simple level of the settings: named sizes and qualities, "keep the photo's colours", and the
// first run's choice from the GPU's speed. Plain data and functions (no DOM, no engine), so that the
// unit tests run them in node. The settings form stays the values of record: a choice writes these
// keys into it, and the form's values are read back into a choice (or "custom").

/** Longest side of the result. "Small" is there for slow (software) GPUs; "Huge" is offered only where
 *  the memory budget allows it. */
export const SIZES = [
  { name: 'small', label: 'Small', size: 128 },
  { name: 'preview', label: 'Preview', size: 256 },
  { name: 'standard', label: 'Standard', size: 512 },
  { name: 'large', label: 'Large', size: 1024 },
  { name: 'huge', label: 'Huge', size: 2048, onlyWhenItFits: true },
];

/** Steps and schedule. Coarse to fine from 128 px, scales √2 apart. "Balanced" is the engine's default
 *  (25 + 50 + 150 = 225 step-equivalents at 256 px; README, "Coarse to fine: what it buys"). */
export const QUALITIES = [
  { name: 'fast', label: 'Fast', settings: { steps: 80, scales: 'auto', min_size: 128, scale_steps: 50 } },
  { name: 'balanced', label: 'Balanced', settings: { steps: 150, scales: 'auto', min_size: 128, scale_steps: 100 } },
  { name: 'best', label: 'Best', settings: { steps: 300, scales: 'auto', min_size: 128, scale_steps: 200 } },
];

/** The colour modes the simple level can show: the checkbox "keep the photo's colours" and its off state. */
export const COLOURS = { keep: 'luminance', off: 'keep-style' };

/** The keys the simple level sets (with the style-strength slider's style_weight and the preset, which
 *  only names where the values came from). Any other key that differs from the defaults is "advanced". */
export const SIMPLE_KEYS = ['size', 'steps', 'scales', 'min_size', 'scale_steps', 'colour', 'style_weight', 'preset'];

/** The first run should take about this long. */
export const FIRST_RUN_SECONDS = 60;
/** Start asks before a run estimated above this. */
export const LONG_RUN_SECONDS = 15 * 60;

/** The choices the page starts with when nothing is known about the GPU. */
export const DEFAULT_CHOICE = { size: 'standard', quality: 'balanced' };

const same = (a, b) => String(a) === String(b);

/** The settings keys of a named size and quality (and the colour checkbox, when given). */
export function settingsOf({ size, quality, keepColours }) {
  const out = {};
  const s = SIZES.find((x) => x.name === size);
  if (s) out.size = s.size;
  const q = QUALITIES.find((x) => x.name === quality);
  if (q) Object.assign(out, q.settings);
  if (keepColours !== undefined) out.colour = keepColours ? COLOURS.keep : COLOURS.off;
  return out;
}

/** The named choices that give these (resolved) settings; 'custom' where none does. `keepColours` is
 *  null for a colour mode the checkbox cannot show. */
export function choiceOf(settings) {
  const size = SIZES.find((s) => same(s.size, settings.size));
  const quality = QUALITIES.find((q) => Object.entries(q.settings).every(([k, v]) => same(settings[k], v)));
  const colour = String(settings.colour);
  return {
    size: size ? size.name : 'custom',
    quality: quality ? quality.name : 'custom',
    keepColours: colour === COLOURS.keep ? true : colour === COLOURS.off ? false : null,
  };
}

/** The keys whose values the simple level cannot show: those outside it that differ from the defaults,
 *  and a size, quality or colour mode that is not one of the named choices. */
export function advancedKeys(settings, defaults) {
  const keys = Object.keys(defaults).filter((k) => !SIMPLE_KEYS.includes(k) && k in settings &&
    !same(JSON.stringify(settings[k]), JSON.stringify(defaults[k])));
  const choice = choiceOf(settings);
  if (choice.size === 'custom') keys.push('size');
  if (choice.quality === 'custom') keys.push('steps');
  if (choice.keepColours === null) keys.push('colour');
  return keys;
}

/** The order in which a first run is tried: the largest size first, then the better quality. */
const FIRST_RUN_ORDER = [
  ['standard', 'balanced'], ['standard', 'fast'], ['preview', 'balanced'], ['preview', 'fast'],
  ['small', 'balanced'], ['small', 'fast'],
];

/**
 * The first run's size and quality: the first of FIRST_RUN_ORDER whose estimate (`secondsOf(size,
 * quality)`, null when it cannot run) is within 1.5× FIRST_RUN_SECONDS; else the quickest that can run,
 * with `slow: true`. Null when none can run.
 */
export function firstRunChoice(secondsOf) {
  let quickest = null;
  for (const [size, quality] of FIRST_RUN_ORDER) {
    const seconds = secondsOf(size, quality);
    if (seconds === null || !Number.isFinite(seconds)) continue;
    if (seconds <= 1.5 * FIRST_RUN_SECONDS) return { size, quality, seconds, slow: false };
    if (!quickest || seconds < quickest.seconds) quickest = { size, quality, seconds, slow: true };
  }
  return quickest;
}
