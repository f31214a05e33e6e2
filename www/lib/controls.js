// The settings form: one control per setting, built from a table so that every control has its tooltip,
// and so that reading and writing the form are the same code for every key. The keys and values are the
// CLI's (snake_case option names); the Rust settings code validates them (StyleTransfer.resolveSettings).


const CONTROLS = [
  { key: 'preset', label: 'Preset', type: 'select', options: [],
    tip: 'A named set of settings to start from. Changing a control afterwards overrides that part of the preset; ' +
      'share links name the preset and carry the overrides.' },
  { key: 'size', label: 'Size (px)', type: 'int',
    tip: 'Longest side of the result, in pixels. The content image is resized to it; GPU memory and time per step ' +
      'grow with its square.' },
  { key: 'steps', label: 'Steps', type: 'int',
    tip: 'Optimisation steps. Each step runs VGG19 forward and backward once. Adam needs a few hundred for a ' +
      'good result; L-BFGS fewer.' },
  { key: 'optimizer', label: 'Optimiser', type: 'select', options: [['adam', 'Adam'], ['lbfgs', 'L-BFGS']],
    tip: 'Adam: robust, clamps the image to [0,1] after each step. L-BFGS: faster convergence per step, no line search.' },
  { key: 'lr', label: 'Learning rate', type: 'float',
    tip: 'Step size, in [0,1] pixel units per step (Adam) or the scale of the L-BFGS step. Too large gives noise; ' +
      'too small changes little.' },
  { key: 'lbfgs_history', label: 'L-BFGS history', type: 'int',
    tip: 'How many past steps L-BFGS remembers to estimate curvature (only used by L-BFGS).' },
  { key: 'content_weight', label: 'Content weight', type: 'float',
    tip: 'α: how strongly the result keeps the features (shapes) of the content photo.' },
  { key: 'style_weight', label: 'Style weight', type: 'float',
    tip: 'β: how strongly the result matches the textures (Gram matrices) of the style images.' },
  { key: 'tv_weight', label: 'TV weight', type: 'float',
    tip: 'γ: total-variation smoothing; higher removes speckle noise, too high blurs.' },
  { key: 'style_scale', label: 'Style scale', type: 'float',
    tip: 'The style image is resized so its longest side is this times the output size: smaller values give ' +
      'larger brush strokes relative to the image.' },
  { key: 'pooling', label: 'Pooling', type: 'select', options: [['max', 'max'], ['avg', 'average']],
    tip: 'VGG19 pooling layers: max (the original network) or average (smoother gradients, Gatys et al. suggest it).' },
  { key: 'init', label: 'Start from', type: 'select',
    options: [['content', 'content image'], ['noise', 'noise'], ['style', 'style image']],
    tip: 'Initial image of the optimisation. An image set under "Initial image" replaces this.' },
  { key: 'seed', label: 'Seed', type: 'int',
    tip: 'Random seed for the noise initialisation: the same seed gives the same result.' },
  { key: 'loss_form', label: 'Loss form', type: 'select',
    options: [['canonical', 'canonical (normalised Gram)'], ['seed', 'seed (tutorial form)']],
    tip: 'canonical: Gram divided by C·H·W, mean squared error. seed: the formulation of the tutorial this ' +
      'project grew from (unnormalised Gram, per-layer 1/(C·H·W), no clamping).' },
  { key: 'scales', label: 'Scales', type: 'select',
    options: [['off', 'one (off)'], ['auto', 'auto (√2 apart)'], ['2', '2'], ['3', '3'], ['4', '4'], ['5', '5'], ['6', '6']],
    tip: 'Coarse to fine: run first at small sizes, each scale starting from the previous one\'s image, upsampled. ' +
      'Coarse steps are cheap and let the painting\'s large structures form.' },
  { key: 'min_size', label: 'First scale (px)', type: 'int',
    tip: 'Longest side of the first scale; 0 picks the smallest size that reaches the deepest layer.' },
  { key: 'scale_steps', label: 'Steps per scale', type: 'int',
    tip: 'Steps at each scale before the last one (which runs "Steps").' },
  { key: 'colour', label: "Colours", type: 'select',
    options: [['keep-style', "the painting's"], ['luminance', "keep the photo's colours (lightness transfer)"],
      ['luma-swap', "keep the photo's colours (swapped in at the end)"], ['histogram', "the painting's, matched to the photo's"]],
    tip: "lightness transfer: only the lightness is stylised (the painting's matched to the photo's), and the photo's " +
      "colours are put back at the end; the image stays grey while it runs. Swapped in at the end: the result's " +
      "lightness with the photo's colours (YIQ). Matched: the painting's colours moved to the photo's mean and " +
      'covariance before the run.' },
  { key: 'content_layers', label: 'Content layers', type: 'layers',
    tip: 'Layers whose features the result must keep, with their weights. Empty means not used. ' +
      'Deeper layers keep shapes but not exact pixels.' },
  { key: 'style_layers', label: 'Style layers', type: 'layers',
    tip: 'Layers whose Gram matrices (textures) the result must match, with per-layer weights. Empty means not ' +
      'used. Shallow layers give fine texture, deep layers larger patterns.' },
];

/** "relu1_1:1,relu2_1:0.75" (or an array / object from JSON) -> Map(name -> weight string). */
export function parseLayerList(value) {
  const map = new Map();
  if (value === undefined || value === null || value === '') return map;
  if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item === 'string') addLayerItem(map, item);
      else if (Array.isArray(item)) map.set(String(item[0]), String(item[1] ?? 1));
      else if (item && typeof item === 'object') map.set(String(item.name ?? item.layer), String(item.weight ?? 1));
    }
    return map;
  }
  if (typeof value === 'object') {
    for (const [name, weight] of Object.entries(value)) map.set(name, String(weight));
    return map;
  }
  for (const item of String(value).split(',')) addLayerItem(map, item);
  return map;
}

function addLayerItem(map, item) {
  const [name, weight] = item.trim().split(':');
  if (name) map.set(name.trim(), weight === undefined ? '1' : weight.trim());
}

export function formatLayerList(map) {
  return [...map].map(([name, weight]) => `${name}:${weight}`).join(',');
}

/** Builds and manages the settings form. `onChange()` is called after any edit. */
/** A number as people write it: the engine gives its shortest form ("2e-3" for 0.002), JS's String
 *  gives "0.002" (and still "1e-7" for 1e-7); the value is the same. Text that is not a number stays. */
export function asDecimal(text) {
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? String(n) : text;
}

export class SettingsForm {
  /** `layers`: StyleTransfer.layers(), the engine's layer table ({name, conv, minSide}). */
  constructor(form, { presets, defaults, layers, onChange }) {
    this.layers = layers.map((l) => l.name);
    this.form = form;
    this.onChange = onChange;
    this.inputs = new Map(); // key -> element, or Map(layer -> input) for layer grids
    this.keys = CONTROLS.filter((c) => c.key === 'preset' || c.key in defaults).map((c) => c.key);
    for (const control of CONTROLS) {
      if (!this.keys.includes(control.key)) continue;
      const spec = control.key === 'preset'
        ? { ...control, options: [['', '(none)'], ...presets.map((p) => [p.name, p.name])] }
        : control;
      this.build(spec, presets);
    }
    form.addEventListener('input', () => this.onChange());
    form.addEventListener('change', () => this.onChange());
    form.addEventListener('submit', (e) => e.preventDefault());
  }

  build(spec, presets) {
    const id = `set-${spec.key}`;
    if (spec.type === 'layers') {
      const fieldset = document.createElement('fieldset');
      fieldset.className = 'full';
      fieldset.title = spec.tip;
      const legend = document.createElement('legend');
      legend.textContent = spec.label;
      fieldset.append(legend);
      const grid = document.createElement('div');
      grid.className = 'layer-grid';
      const inputs = new Map();
      for (const layer of this.layers) {
        const label = document.createElement('label');
        label.textContent = layer;
        const input = document.createElement('input');
        input.type = 'text';
        input.inputMode = 'decimal';
        input.id = `${id}-${layer}`;
        input.placeholder = '–';
        input.title = `${spec.label}: weight of ${layer} (empty: not used)`;
        label.append(input);
        grid.append(label);
        inputs.set(layer, input);
      }
      fieldset.append(grid);
      this.form.append(fieldset);
      this.inputs.set(spec.key, inputs);
      return;
    }
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = spec.label;
    label.title = spec.tip;
    let input;
    if (spec.type === 'select') {
      input = document.createElement('select');
      for (const [value, text] of spec.options) {
        const option = document.createElement('option');
        option.value = value;
        option.textContent = text;
        if (spec.key === 'preset') {
          const preset = presets.find((p) => p.name === value);
          if (preset && preset.description) option.title = preset.description;
        }
        input.append(option);
      }
    } else {
      input = document.createElement('input');
      // Text, not type=number: values such as 1e6 and 0.003 must show exactly as a link wrote them.
      input.type = 'text';
      input.inputMode = spec.type === 'int' ? 'numeric' : 'decimal';
    }
    input.id = id;
    input.name = spec.key;
    input.title = spec.tip;
    this.form.append(label, input);
    this.inputs.set(spec.key, input);
    this.specs = this.specs || new Map();
    this.specs.set(spec.key, spec);
  }

  /** The form as a settings object (CLI keys). Throws an Error naming the field when a number is malformed. */
  read() {
    const settings = {};
    for (const key of this.keys) {
      const input = this.inputs.get(key);
      if (input instanceof Map) {
        const map = new Map();
        for (const [layer, el] of input) {
          const text = el.value.trim();
          if (text === '') continue;
          if (!Number.isFinite(Number(text))) throw new Error(`${key}: the weight of ${layer} ("${text}") is not a number`);
          map.set(layer, text);
        }
        settings[key] = formatLayerList(map);
        continue;
      }
      const spec = this.specs.get(key);
      const text = input.value.trim();
      if (spec.type === 'int' || spec.type === 'float') {
        const value = Number(text);
        if (text === '' || !Number.isFinite(value)) throw new Error(`${spec.label}: "${text}" is not a number`);
        if (spec.type === 'int' && !Number.isInteger(value)) throw new Error(`${spec.label}: "${text}" is not a whole number`);
        // The seed is a u64: as a JS Number it would lose digits above 2^53, so it goes as text (Rust reads both).
        settings[key] = key === 'seed' ? text : value;
      } else {
        settings[key] = text;
      }
    }
    return settings;
  }

  /** Shows a settings object in the form (keys it does not know are left alone). */
  write(settings) {
    for (const key of this.keys) {
      if (!(key in settings)) continue;
      const input = this.inputs.get(key);
      const value = settings[key];
      if (input instanceof Map) {
        const map = parseLayerList(value);
        for (const [layer, el] of input) el.value = map.has(layer) ? asDecimal(map.get(layer)) : '';
      } else if (input.tagName === 'SELECT') {
        const text = value === null || value === undefined ? '' : String(value);
        if (![...input.options].some((o) => o.value === text)) {
          // A value the page has no option for (a newer preset): show it rather than drop it.
          const option = document.createElement('option');
          option.value = text;
          option.textContent = text;
          input.append(option);
        }
        input.value = text;
      } else {
        const text = value === null || value === undefined ? '' : String(value);
        input.value = this.specs.get(key).type === 'float' ? asDecimal(text) : text;
      }
    }
  }

  setEnabled(enabled) {
    for (const el of this.form.querySelectorAll('input, select')) {
      el.disabled = !enabled || el.dataset.unavailable === 'true';
    }
  }

  /** Greys out the layers the loaded weights file does not have (e.g. relu5_2..relu5_4). */
  setAvailableLayers(available) {
    for (const key of ['content_layers', 'style_layers']) {
      const inputs = this.inputs.get(key);
      if (!(inputs instanceof Map)) continue;
      for (const [layer, el] of inputs) {
        const missing = !available.includes(layer);
        el.dataset.unavailable = String(missing);
        el.disabled = missing;
        if (missing) el.title = `${layer}: not in the weights file (it holds ${available[0]}..${available[available.length - 1]})`;
      }
    }
  }

  /** The control element of a key (for tests and focus), or the input of one layer. */
  element(key, layer) {
    const input = this.inputs.get(key);
    return input instanceof Map ? input.get(layer) : input;
  }
}
