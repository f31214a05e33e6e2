//! Every user-facing option in one place, shared by the native CLI, the JS
//! `configure(json)` call and share links, so that the three always mean the same thing.
//!
//! - [`Settings`] holds the options; [`Settings::default`] is what the CLI does with no options.
//! - [`preset`] gives named sets of settings (`default`, `seed`, `neural-style`, `fast`).
//! - [`Overrides`] is "some options given": the CLI, JSON and share links all parse their values
//!   through [`Overrides::set`] (one parser, one set of error messages) and apply them with
//!   [`Settings::apply`]. The order is always: preset (or the defaults), then the given options.
//! - [`Settings::apply_json`] is the JS API's `configure`.
//! - [`to_share_fragment`] / [`parse_share_fragment`] encode settings and style URLs in a URL fragment.
//!
//! **Optimizer-dependent learning rate.** Adam and L-BFGS want very different step sizes
//! (Adam 0.02 in [0,1] pixel units, L-BFGS 1.0). Rule: when an update *changes* the optimizer and
//! does not give `lr` in the same update, `lr` becomes the new optimizer's default
//! ([`OptimizerChoice::default_lr`]). So `--optimizer lbfgs` alone runs with lr 1, `--preset seed
//! --optimizer adam` keeps the preset's 0.003, and an explicit `--lr` always wins.
//!
//! **Units of `lr` in the seed loss form.** With `loss_form = seed` the learning rate is measured
//! in ImageNet-normalised units, as in the tutorial the seed preset reproduces: the engine moves
//! channel c by `lr · std_c` in [0,1] units (std = 0.229, 0.224, 0.225). In the canonical form it is
//! in [0,1] pixel units.
//!
//! This module is plain Rust (no GPU, no I/O) and builds for wasm32 too.

use std::fmt;

/// Option keys (snake_case CLI option names) in the order they are documented and serialised.
/// `preset` is not in this list: it is applied before all of these.
pub const KEYS: [&str; 16] = [
    "size",
    "steps",
    "optimizer",
    "lr",
    "lbfgs_history",
    "content_weight",
    "style_weight",
    "tv_weight",
    "content_layers",
    "style_layers",
    "pooling",
    "init",
    "seed",
    "loss_form",
    "style_scale",
    "style_blend",
];

/// Ranges, shared by validation and error messages (the page's controls are checked by this code too).
pub const SIZE_RANGE: (u32, u32) = (16, 4096);
pub const STEPS_RANGE: (u32, u32) = (0, 100_000);
pub const LBFGS_HISTORY_RANGE: (u32, u32) = (1, 100);
pub const STYLE_SCALE_RANGE: (f32, f32) = (0.05, 8.0);
/// At most this many style images (and blend weights).
pub const MAX_STYLES: usize = 16;
/// A share link longer than this is ignored as a whole.
pub const MAX_FRAGMENT_BYTES: usize = 8192;
/// A URL longer than this in a share link is ignored.
pub const MAX_URL_BYTES: usize = 2048;
/// `--init PATH`: a longer path is refused (protects messages and links from huge strings).
pub const MAX_PATH_BYTES: usize = 4096;

/// Which optimiser runs the steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerChoice {
    Adam,
    Lbfgs,
}

impl OptimizerChoice {
    pub const NAMES: [&'static str; 2] = ["adam", "lbfgs"];

    pub fn name(self) -> &'static str {
        match self {
            OptimizerChoice::Adam => "adam",
            OptimizerChoice::Lbfgs => "lbfgs",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "adam" => Ok(OptimizerChoice::Adam),
            "lbfgs" => Ok(OptimizerChoice::Lbfgs),
            other => Err(format!(
                "unknown optimizer {}; use adam or lbfgs",
                show(other)
            )),
        }
    }

    /// The learning rate used when the optimizer is chosen without an explicit `lr`.
    pub fn default_lr(self) -> f32 {
        match self {
            OptimizerChoice::Adam => 0.02,
            OptimizerChoice::Lbfgs => 1.0,
        }
    }
}

/// The pooling between VGG blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    Max,
    Avg,
}

impl Pooling {
    pub const NAMES: [&'static str; 2] = ["max", "avg"];

    pub fn name(self) -> &'static str {
        match self {
            Pooling::Max => "max",
            Pooling::Avg => "avg",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "max" => Ok(Pooling::Max),
            "avg" => Ok(Pooling::Avg),
            other => Err(format!("unknown pooling {}; use max or avg", show(other))),
        }
    }
}

/// The image the optimisation starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Init {
    Content,
    /// Gaussian noise around mid-grey (0.5 ± 0.15, clamped), from `seed`.
    Noise,
    /// The (first) style image, resized to the content's size.
    Style,
    /// An image file (native) resized to the content's size. Any `init` value other than
    /// `content`, `noise` and `style` is a path; write `./noise` for a file named `noise`.
    Path(String),
}

impl Init {
    /// The string form (`content`, `noise`, `style` or the path).
    pub fn name(&self) -> &str {
        match self {
            Init::Content => "content",
            Init::Noise => "noise",
            Init::Style => "style",
            Init::Path(p) => p,
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "content" => Ok(Init::Content),
            "noise" => Ok(Init::Noise),
            "style" => Ok(Init::Style),
            "" => Err("is empty; use content, noise, style or an image path".into()),
            p if p.len() > MAX_PATH_BYTES => Err(format!(
                "path is {} bytes, more than {MAX_PATH_BYTES}",
                p.len()
            )),
            p if p.chars().any(|c| c.is_control()) => {
                Err(format!("path {} contains control characters", show(p)))
            }
            p => Ok(Init::Path(p.to_string())),
        }
    }
}

/// Which formulation of the losses: canonical, or the tutorial's (the seed preset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossForm {
    /// Normalised Gram `φφᵀ/(CHW)`, means over C² entries; Adam steps clamp x to [0,1].
    Canonical,
    /// The tutorial's form: unnormalised Gram, each style layer divided by CHW, lr in
    /// ImageNet-normalised units, no clamping.
    Seed,
}

impl LossForm {
    pub const NAMES: [&'static str; 2] = ["canonical", "seed"];

    pub fn name(self) -> &'static str {
        match self {
            LossForm::Canonical => "canonical",
            LossForm::Seed => "seed",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "canonical" => Ok(LossForm::Canonical),
            "seed" => Ok(LossForm::Seed),
            other => Err(format!(
                "unknown loss form {}; use canonical or seed",
                show(other)
            )),
        }
    }
}

/// One content or style layer and its weight `w_l`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeight {
    /// A ReLU name of [`crate::model::VGG19`], e.g. "relu4_2".
    pub layer: String,
    pub weight: f32,
}

impl LayerWeight {
    pub fn new(layer: &str, weight: f32) -> Self {
        LayerWeight {
            layer: layer.to_string(),
            weight,
        }
    }
}

/// Every option of a style-transfer run. The fields mean exactly what the CLI options of the same
/// name (with `-` for `_`) mean; see `stylize --help`.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Longest side of the output in pixels.
    pub size: u32,
    pub steps: u32,
    pub optimizer: OptimizerChoice,
    /// Learning rate: [0,1] pixel units for Adam in the canonical form; see the module docs for
    /// the seed form; L-BFGS scales its steps by it (1 = plain L-BFGS).
    pub lr: f32,
    /// L-BFGS history length (pairs of vectors kept).
    pub lbfgs_history: u32,
    /// α, β, γ of `L = α L_c + β L_s + γ L_tv`.
    pub content_weight: f32,
    pub style_weight: f32,
    pub tv_weight: f32,
    pub content_layers: Vec<LayerWeight>,
    pub style_layers: Vec<LayerWeight>,
    pub pooling: Pooling,
    pub init: Init,
    /// Seeds the noise init (and anything else random).
    pub seed: u64,
    pub loss_form: LossForm,
    /// Each style image's longest side is `style_scale · size`.
    pub style_scale: f32,
    /// Blend weights of the style images, normalised by the engine; empty = equal weights.
    pub style_blend: Vec<f32>,
    /// The preset these settings started from (for share links); `None` = the defaults.
    pub preset: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            size: 512,
            steps: 500,
            optimizer: OptimizerChoice::Adam,
            lr: OptimizerChoice::Adam.default_lr(),
            lbfgs_history: 5,
            content_weight: 5.0,
            style_weight: 100.0,
            tv_weight: 0.0,
            content_layers: vec![LayerWeight::new("relu4_2", 1.0)],
            style_layers: ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
                .iter()
                .map(|l| LayerWeight::new(l, 1.0))
                .collect(),
            pooling: Pooling::Max,
            init: Init::Content,
            seed: 0,
            loss_form: LossForm::Canonical,
            style_scale: 1.0,
            style_blend: Vec::new(),
            preset: None,
        }
    }
}

/// Names accepted by [`preset`], in the order a UI should list them.
pub fn preset_names() -> &'static [&'static str] {
    &["default", "seed", "neural-style", "fast"]
}

/// A one-line description of a preset, for `--help` and tooltips.
pub fn preset_description(name: &str) -> Option<&'static str> {
    Some(match name {
        "default" => "the defaults: Adam lr 0.02, 500 steps at 512 px, content 5, style 100",
        "seed" => {
            "the tutorial this project grew from: seed loss form, style weight 1e6, Adam lr 0.003 \
                   (ImageNet-normalised units), 2000 steps at 400 px, no clamping"
        }
        "neural-style" => {
            "like jcjohnson/neural-style: L-BFGS, 1000 steps at 512 px from noise, content 5, \
                           style 100, TV 1e-3"
        }
        "fast" => "a quick preview: 100 Adam steps at 256 px, lr 0.03",
        _ => return None,
    })
}

/// The named set of settings, with `preset` set to its name; `None` for an unknown name.
pub fn preset(name: &str) -> Option<Settings> {
    let base = Settings {
        preset: Some(name.to_string()),
        ..Settings::default()
    };
    Some(match name {
        "default" => base,
        "seed" => Settings {
            size: 400,
            steps: 2000,
            optimizer: OptimizerChoice::Adam,
            lr: 0.003,
            content_weight: 1.0,
            style_weight: 1e6,
            tv_weight: 0.0,
            content_layers: vec![LayerWeight::new("relu4_2", 1.0)],
            style_layers: vec![
                LayerWeight::new("relu1_1", 1.0),
                LayerWeight::new("relu2_1", 0.75),
                LayerWeight::new("relu3_1", 0.2),
                LayerWeight::new("relu4_1", 0.2),
                LayerWeight::new("relu5_1", 0.2),
            ],
            init: Init::Content,
            loss_form: LossForm::Seed,
            ..base
        },
        "neural-style" => Settings {
            size: 512,
            steps: 1000,
            optimizer: OptimizerChoice::Lbfgs,
            lr: 1.0,
            content_weight: 5.0,
            style_weight: 100.0,
            tv_weight: 1e-3,
            init: Init::Noise,
            ..base
        },
        "fast" => Settings {
            size: 256,
            steps: 100,
            lr: 0.03,
            ..base
        },
        _ => return None,
    })
}

/// A bad option value: which option (`key`, snake_case; empty when not about one option) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError {
    pub key: String,
    pub reason: String,
}

impl SettingsError {
    pub fn new(key: &str, reason: impl Into<String>) -> Self {
        SettingsError {
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// The message with the key written as a CLI option (`--content-layers: ...`).
    pub fn cli_message(&self) -> String {
        if self.key.is_empty() {
            self.reason.clone()
        } else {
            format!("--{}: {}", self.key.replace('_', "-"), self.reason)
        }
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.key, self.reason)
        }
    }
}

impl std::error::Error for SettingsError {}

/// Some options given on top of a base (preset or defaults); `None` = not given.
/// Every value set through [`Overrides::set`] has been range-checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub size: Option<u32>,
    pub steps: Option<u32>,
    pub optimizer: Option<OptimizerChoice>,
    pub lr: Option<f32>,
    pub lbfgs_history: Option<u32>,
    pub content_weight: Option<f32>,
    pub style_weight: Option<f32>,
    pub tv_weight: Option<f32>,
    pub content_layers: Option<Vec<LayerWeight>>,
    pub style_layers: Option<Vec<LayerWeight>>,
    pub pooling: Option<Pooling>,
    pub init: Option<Init>,
    pub seed: Option<u64>,
    pub loss_form: Option<LossForm>,
    pub style_scale: Option<f32>,
    pub style_blend: Option<Vec<f32>>,
}

impl Overrides {
    /// Parses and range-checks `value` (the CLI's string form) for option `key` (snake_case).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SettingsError> {
        let err = |reason: String| SettingsError::new(key, reason);
        match key {
            "size" => self.size = Some(parse_u32_in(value, SIZE_RANGE).map_err(err)?),
            "steps" => self.steps = Some(parse_u32_in(value, STEPS_RANGE).map_err(err)?),
            "optimizer" => self.optimizer = Some(OptimizerChoice::parse(value).map_err(err)?),
            "lr" => self.lr = Some(parse_f32(value).and_then(check_lr).map_err(err)?),
            "lbfgs_history" => {
                self.lbfgs_history = Some(parse_u32_in(value, LBFGS_HISTORY_RANGE).map_err(err)?)
            }
            "content_weight" => {
                self.content_weight = Some(parse_f32(value).and_then(check_weight).map_err(err)?)
            }
            "style_weight" => {
                self.style_weight = Some(parse_f32(value).and_then(check_weight).map_err(err)?)
            }
            "tv_weight" => {
                self.tv_weight = Some(parse_f32(value).and_then(check_weight).map_err(err)?)
            }
            "content_layers" => self.content_layers = Some(parse_layers(value).map_err(err)?),
            "style_layers" => self.style_layers = Some(parse_layers(value).map_err(err)?),
            "pooling" => self.pooling = Some(Pooling::parse(value).map_err(err)?),
            "init" => self.init = Some(Init::parse(value).map_err(err)?),
            "seed" => self.seed = Some(parse_u64(value).map_err(err)?),
            "loss_form" => self.loss_form = Some(LossForm::parse(value).map_err(err)?),
            "style_scale" => {
                self.style_scale = Some(parse_f32(value).and_then(check_style_scale).map_err(err)?)
            }
            "style_blend" => self.style_blend = Some(parse_blend(value).map_err(err)?),
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }
}

fn unknown_key(key: &str) -> SettingsError {
    SettingsError::new(
        "",
        format!(
            "unknown option {}; valid options: preset, {}",
            show(key),
            KEYS.join(", ")
        ),
    )
}

impl Settings {
    /// The settings of preset `name`, or the defaults for `None`, with `overrides` applied and
    /// the result validated. This is what the CLI runs.
    pub fn resolve(
        preset_name: Option<&str>,
        overrides: &Overrides,
    ) -> Result<Settings, SettingsError> {
        let mut s = match preset_name {
            Some(name) => preset(name).ok_or_else(|| unknown_preset(name))?,
            None => Settings::default(),
        };
        s.apply(overrides);
        s.validate()?;
        Ok(s)
    }

    /// Applies the given options (see the module docs for the optimizer/lr rule).
    pub fn apply(&mut self, o: &Overrides) {
        if let Some(opt) = o.optimizer {
            if opt != self.optimizer && o.lr.is_none() {
                self.lr = opt.default_lr();
            }
            self.optimizer = opt;
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = &o.$f { self.$f = v.clone(); } )* };
        }
        take!(
            size,
            steps,
            lr,
            lbfgs_history,
            content_weight,
            style_weight,
            tv_weight,
            content_layers,
            style_layers,
            pooling,
            init,
            seed,
            loss_form,
            style_scale,
            style_blend
        );
    }

    /// Checks every field's range; the error names the first bad option.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let check = |key: &str, r: Result<(), String>| r.map_err(|e| SettingsError::new(key, e));
        check("size", in_range_u32(self.size, SIZE_RANGE))?;
        check("steps", in_range_u32(self.steps, STEPS_RANGE))?;
        check("lr", check_lr(self.lr).map(drop))?;
        check(
            "lbfgs_history",
            in_range_u32(self.lbfgs_history, LBFGS_HISTORY_RANGE),
        )?;
        check(
            "content_weight",
            check_weight(self.content_weight).map(drop),
        )?;
        check("style_weight", check_weight(self.style_weight).map(drop))?;
        check("tv_weight", check_weight(self.tv_weight).map(drop))?;
        check("content_layers", check_layers(&self.content_layers))?;
        check("style_layers", check_layers(&self.style_layers))?;
        check("init", Init::parse(self.init.name()).map(drop))?;
        check("style_scale", check_style_scale(self.style_scale).map(drop))?;
        check("style_blend", check_blend(&self.style_blend))?;
        if let Some(p) = &self.preset {
            if preset(p).is_none() {
                return Err(unknown_preset(p));
            }
        }
        Ok(())
    }

    /// The value of option `key` in its string form (what [`Overrides::set`] parses back to the
    /// same value); `None` for an unknown key. `preset` gives the preset name or "".
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "preset" => self.preset.clone().unwrap_or_default(),
            "size" => self.size.to_string(),
            "steps" => self.steps.to_string(),
            "optimizer" => self.optimizer.name().to_string(),
            "lr" => fmt_float(self.lr),
            "lbfgs_history" => self.lbfgs_history.to_string(),
            "content_weight" => fmt_float(self.content_weight),
            "style_weight" => fmt_float(self.style_weight),
            "tv_weight" => fmt_float(self.tv_weight),
            "content_layers" => format_layers(&self.content_layers),
            "style_layers" => format_layers(&self.style_layers),
            "pooling" => self.pooling.name().to_string(),
            "init" => self.init.name().to_string(),
            "seed" => self.seed.to_string(),
            "loss_form" => self.loss_form.name().to_string(),
            "style_scale" => fmt_float(self.style_scale),
            "style_blend" => self
                .style_blend
                .iter()
                .map(|w| fmt_float(*w))
                .collect::<Vec<_>>()
                .join(","),
            _ => return None,
        })
    }

    /// `configure(json)` of the JS API. `json` is an object whose keys are the CLI option names in
    /// snake_case (`preset` and every name in [`KEYS`]). `preset` (a name) replaces all settings
    /// with that preset first; the other keys then override. Values:
    /// - numbers as JSON numbers (or strings holding a number, e.g. a `seed` above 2^53);
    /// - `optimizer`, `pooling`, `init`, `loss_form`, `preset`: strings;
    /// - `content_layers` / `style_layers`: the CLI string `"relu4_2:1,relu5_1:0.5"` (weights
    ///   optional, default 1), or an object `{"relu4_2": 1, "relu5_1": 0.5}`;
    /// - `style_blend`: an array of numbers or the string `"0.7,0.3"`.
    ///
    /// Unknown keys and bad values are errors with the reason; on error nothing changes.
    pub fn apply_json(&mut self, json: &str) -> Result<(), SettingsError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| SettingsError::new("", format!("configure expects a JSON object: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(SettingsError::new(
                "",
                "configure expects a JSON object, e.g. {\"steps\": 100}",
            ));
        };
        let mut next = match map.get("preset") {
            None => self.clone(),
            Some(serde_json::Value::String(name)) => {
                preset(name).ok_or_else(|| unknown_preset(name))?
            }
            Some(_) => {
                return Err(SettingsError::new(
                    "preset",
                    "expected a preset name (a string)",
                ))
            }
        };
        let mut overrides = Overrides::default();
        for (key, v) in &map {
            if key == "preset" {
                continue;
            }
            if !KEYS.contains(&key.as_str()) {
                return Err(unknown_key(key));
            }
            let text = json_value_text(key, v)?;
            overrides.set(key, &text)?;
        }
        next.apply(&overrides);
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// All settings as a JSON object in the form [`Settings::apply_json`] reads (`preset` is
    /// included only when set). Applying it to any settings gives back these exactly.
    pub fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        if let Some(p) = &self.preset {
            map.insert("preset".into(), p.clone().into());
        }
        let num = |x: f32| -> serde_json::Value {
            // Through the shortest f32 text, so 0.02f32 is written 0.02, not 0.019999999552965164.
            let v: f64 = fmt_float(x).parse().unwrap_or(0.0);
            serde_json::Number::from_f64(v)
                .map(Into::into)
                .unwrap_or(serde_json::Value::Null)
        };
        map.insert("size".into(), self.size.into());
        map.insert("steps".into(), self.steps.into());
        map.insert("optimizer".into(), self.optimizer.name().into());
        map.insert("lr".into(), num(self.lr));
        map.insert("lbfgs_history".into(), self.lbfgs_history.into());
        map.insert("content_weight".into(), num(self.content_weight));
        map.insert("style_weight".into(), num(self.style_weight));
        map.insert("tv_weight".into(), num(self.tv_weight));
        map.insert(
            "content_layers".into(),
            format_layers(&self.content_layers).into(),
        );
        map.insert(
            "style_layers".into(),
            format_layers(&self.style_layers).into(),
        );
        map.insert("pooling".into(), self.pooling.name().into());
        map.insert("init".into(), self.init.name().into());
        // A JS number holds integers exactly only up to 2^53; above that the seed travels as a string.
        map.insert(
            "seed".into(),
            if self.seed < (1u64 << 53) {
                self.seed.into()
            } else {
                self.seed.to_string().into()
            },
        );
        map.insert("loss_form".into(), self.loss_form.name().into());
        map.insert("style_scale".into(), num(self.style_scale));
        map.insert(
            "style_blend".into(),
            self.style_blend
                .iter()
                .map(|w| num(*w))
                .collect::<Vec<_>>()
                .into(),
        );
        serde_json::Value::Object(map).to_string()
    }
}

fn unknown_preset(name: &str) -> SettingsError {
    SettingsError::new(
        "preset",
        format!(
            "unknown preset {}; valid presets: {}",
            show(name),
            preset_names().join(", ")
        ),
    )
}

/// A JSON value as the CLI string form of option `key`.
fn json_value_text(key: &str, v: &serde_json::Value) -> Result<String, SettingsError> {
    use serde_json::Value;
    let is_layers = key == "content_layers" || key == "style_layers";
    match v {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(items) if key == "style_blend" => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Number(n) => parts.push(n.to_string()),
                    _ => {
                        return Err(SettingsError::new(
                            key,
                            "expected an array of numbers, e.g. [0.7, 0.3]",
                        ))
                    }
                }
            }
            Ok(parts.join(","))
        }
        Value::Object(layers) if is_layers => {
            let mut parts = Vec::with_capacity(layers.len());
            for (name, w) in layers {
                match w {
                    Value::Number(n) => parts.push(format!("{name}:{n}")),
                    _ => {
                        return Err(SettingsError::new(
                            key,
                            format!("the weight of layer {} must be a number", show(name)),
                        ))
                    }
                }
            }
            Ok(parts.join(","))
        }
        _ if is_layers => Err(SettingsError::new(
            key,
            "expected a string like \"relu4_2:1,relu5_1:0.5\" or an object like {\"relu4_2\": 1}",
        )),
        _ if key == "style_blend" => Err(SettingsError::new(
            key,
            "expected an array of numbers, e.g. [0.7, 0.3]",
        )),
        _ => Err(SettingsError::new(
            key,
            format!("expected a number or a string, got {}", json_kind(v)),
        )),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------------
// Value parsers and range checks (one place for every message).

/// A value for an error message: quoted, escaped, and cut to 40 characters so that a hostile
/// 100 KB string never ends up whole in a message.
pub fn show(s: &str) -> String {
    const MAX: usize = 40;
    let mut out = String::from("'");
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('\'');
    out
}

/// Shortest text that parses back to exactly `x` (Rust's `{}` or `{:e}`, whichever is shorter),
/// for f32 (settings, share links) and f64 (the CLI's JSON log) alike.
pub fn fmt_float<T: fmt::Display + fmt::LowerExp>(x: T) -> String {
    let plain = format!("{x}");
    let exp = format!("{x:e}");
    if exp.len() < plain.len() {
        exp
    } else {
        plain
    }
}

fn parse_f32(s: &str) -> Result<f32, String> {
    let t = s.trim();
    let v: f32 = t
        .parse()
        .map_err(|_| format!("{} is not a number", show(t)))?;
    if !v.is_finite() {
        return Err(format!("{} is not a finite number", show(t)));
    }
    Ok(v)
}

/// A whole number; also accepts an integral float like `512.0` or `1e3` (JSON from JS may
/// write integers that way).
fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if let Ok(v) = t.parse::<u64>() {
        return Ok(v);
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() && f.fract() == 0.0 && (0.0..9007199254740992.0).contains(&f) => {
            Ok(f as u64)
        }
        Ok(f) if f.is_finite() && f.fract() == 0.0 && f >= 0.0 => Err(format!(
            "{} is too large (write integers above 2^53 without exponent)",
            show(t)
        )),
        _ => Err(format!("{} is not a whole number >= 0", show(t))),
    }
}

fn parse_u32_in(s: &str, (lo, hi): (u32, u32)) -> Result<u32, String> {
    let v = parse_u64(s).map_err(|e| format!("{e}; expected {lo} to {hi}"))?;
    if v < lo as u64 || v > hi as u64 {
        return Err(format!(
            "{} is out of range; expected {lo} to {hi}",
            show(s.trim())
        ));
    }
    Ok(v as u32)
}

fn in_range_u32(v: u32, (lo, hi): (u32, u32)) -> Result<(), String> {
    if v < lo || v > hi {
        return Err(format!("{v} is out of range; expected {lo} to {hi}"));
    }
    Ok(())
}

fn check_lr(v: f32) -> Result<f32, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a finite number > 0, got {}", fmt_float(v)))
    }
}

fn check_weight(v: f32) -> Result<f32, String> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a finite number >= 0, got {}", fmt_float(v)))
    }
}

fn check_style_scale(v: f32) -> Result<f32, String> {
    let (lo, hi) = STYLE_SCALE_RANGE;
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be from {lo} to {hi}, got {}", fmt_float(v)))
    }
}

/// Parses a layer list `relu4_2[:w],relu1_1[:w],...` (weight 1 when omitted).
pub fn parse_layers(s: &str) -> Result<Vec<LayerWeight>, String> {
    if s.trim().is_empty() {
        return Err(format!(
            "the layer list is empty; give at least one of {}",
            crate::model::relu_layer_names().join(", ")
        ));
    }
    let mut layers: Vec<LayerWeight> = Vec::new();
    for token in s.split(',') {
        let token = token.trim();
        if token.is_empty() {
            return Err(format!("empty entry in layer list {}", show(s)));
        }
        let (name, weight) = match token.split_once(':') {
            Some((n, w)) => {
                let w = parse_f32(w)
                    .and_then(check_weight)
                    .map_err(|e| format!("bad weight in {}: {e}", show(token)))?;
                (n.trim(), w)
            }
            None => (token, 1.0),
        };
        if crate::model::layer_index(name).is_none() {
            let context = if name == token {
                String::new()
            } else {
                format!(" in {}", show(token))
            };
            return Err(format!(
                "unknown layer {}{context}; valid layers: {}",
                show(name),
                crate::model::relu_layer_names().join(", ")
            ));
        }
        if layers.iter().any(|l| l.layer == name) {
            return Err(format!("layer {} is listed twice", show(name)));
        }
        layers.push(LayerWeight::new(name, weight));
    }
    Ok(layers)
}

/// The string form of a layer list (`:w` omitted for weight 1); [`parse_layers`] reads it back.
pub fn format_layers(layers: &[LayerWeight]) -> String {
    layers
        .iter()
        .map(|l| {
            if l.weight == 1.0 {
                l.layer.clone()
            } else {
                format!("{}:{}", l.layer, fmt_float(l.weight))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn check_layers(layers: &[LayerWeight]) -> Result<(), String> {
    // Re-parsing the string form applies every rule (names, duplicates, weights, non-empty) once.
    let text = format_layers(layers);
    if layers.iter().any(|l| l.layer.contains([',', ':'])) {
        return Err("a layer name contains ',' or ':'".into());
    }
    parse_layers(&text).map(drop)
}

/// Parses blend weights `0.7,0.3`; the empty string means "equal weights".
pub fn parse_blend(s: &str) -> Result<Vec<f32>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    let weights = s
        .split(',')
        .map(|t| parse_f32(t).and_then(check_weight))
        .collect::<Result<Vec<f32>, String>>()?;
    check_blend(&weights)?;
    Ok(weights)
}

fn check_blend(weights: &[f32]) -> Result<(), String> {
    if weights.is_empty() {
        return Ok(());
    }
    if weights.len() > MAX_STYLES {
        return Err(format!(
            "{} blend weights; at most {MAX_STYLES} style images are supported",
            weights.len()
        ));
    }
    for w in weights {
        check_weight(*w)?;
    }
    let sum: f32 = weights.iter().sum();
    if !(sum > 0.0 && sum.is_finite()) {
        return Err("the blend weights must have a positive, finite sum".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Share links.

/// What a share link holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ShareLink {
    pub settings: Settings,
    /// Style images by URL (http/https only) and their blend weights.
    pub style_urls: Vec<(String, f32)>,
    pub content_url: Option<String>,
    /// Everything that was ignored, and why (unknown keys, bad values, bad URLs...).
    pub warnings: Vec<String>,
}

/// `key=value&...` (no leading `#`) naming the preset (if any) and only the options that differ
/// from it, then the style URLs as `style=WEIGHT:URL`. [`parse_share_fragment`] restores all of it
/// exactly, with two documented exceptions: an `init` that is a file path is left out (a link
/// cannot carry a local file), and URLs that are not http(s) (e.g. `blob:` or `data:` URLs of the
/// user's own uploads) are left out — uploads are never put in a link.
pub fn to_share_fragment(settings: &Settings, style_urls: &[(String, f32)]) -> String {
    to_share_fragment_with_content(settings, None, style_urls)
}

/// [`to_share_fragment`] plus a content image URL (`content=URL`), e.g. for a sample image.
pub fn to_share_fragment_with_content(
    settings: &Settings,
    content_url: Option<&str>,
    style_urls: &[(String, f32)],
) -> String {
    let base = settings.preset.as_deref().and_then(preset);
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(b) = &base {
        pairs.push(("preset", b.preset.clone().unwrap_or_default()));
    }
    let base = base.unwrap_or_default();
    for key in KEYS {
        if key == "init" && matches!(settings.init, Init::Path(_)) {
            continue;
        }
        let (mine, theirs) = (settings.get(key), base.get(key));
        // Changing the optimizer resets lr unless lr is given too, so lr then always travels.
        let forced = key == "lr" && settings.optimizer != base.optimizer;
        if mine != theirs || forced {
            pairs.push((key, mine.unwrap_or_default()));
        }
    }
    if let Some(url) = content_url.filter(|u| check_url(u).is_ok()) {
        pairs.push(("content", url.to_string()));
    }
    for (url, weight) in style_urls {
        if check_url(url).is_ok() && check_weight(*weight).is_ok() {
            pairs.push(("style", format!("{}:{url}", fmt_float(*weight))));
        }
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Reads a share link fragment (with or without a leading `#` or `?`). Never fails and never
/// panics: anything unusable is reported in `warnings` and ignored, leaving the preset's (or the
/// default) value in place.
pub fn parse_share_fragment(fragment: &str) -> ShareLink {
    let mut warnings = Vec::new();
    let link = |settings: Settings, style_urls, content_url, warnings| ShareLink {
        settings,
        style_urls,
        content_url,
        warnings,
    };
    let text = fragment
        .strip_prefix('#')
        .or_else(|| fragment.strip_prefix('?'))
        .unwrap_or(fragment);
    if text.len() > MAX_FRAGMENT_BYTES {
        warnings.push(format!(
            "the link is {} bytes, more than the {MAX_FRAGMENT_BYTES} allowed; it was ignored",
            text.len()
        ));
        return link(Settings::default(), Vec::new(), None, warnings);
    }

    let mut preset_name: Option<String> = None;
    let mut overrides = Overrides::default();
    let mut seen: Vec<String> = Vec::new();
    let mut content_url: Option<String> = None;
    let mut style_urls: Vec<(String, f32)> = Vec::new();
    const MAX_WARNINGS: usize = 50;

    for piece in text.split('&').filter(|p| !p.is_empty()) {
        if warnings.len() >= MAX_WARNINGS {
            warnings.push("too many problems in the link; the rest was ignored".into());
            break;
        }
        let Some((raw_key, raw_value)) = piece.split_once('=') else {
            warnings.push(format!("{} is not key=value; ignored", show(piece)));
            continue;
        };
        let (key, value) = match (percent_decode(raw_key), percent_decode(raw_value)) {
            (Ok(k), Ok(v)) => (k, v),
            (Err(e), _) | (_, Err(e)) => {
                warnings.push(format!("{}: {e}; ignored", show(piece)));
                continue;
            }
        };
        let repeatable = key == "style";
        if !repeatable && seen.contains(&key) {
            warnings.push(format!(
                "{} is given twice; the first value is used",
                show(&key)
            ));
            continue;
        }
        match key.as_str() {
            "preset" => {
                if preset(&value).is_some() {
                    preset_name = Some(value);
                } else {
                    warnings.push(format!("{}; ignored", unknown_preset(&value)));
                }
            }
            "content" => match check_url(&value) {
                Ok(()) => content_url = Some(value),
                Err(e) => warnings.push(format!("content: {e}; ignored")),
            },
            "style" => {
                if style_urls.len() >= MAX_STYLES {
                    warnings.push(format!(
                        "more than {MAX_STYLES} style images; the rest were ignored"
                    ));
                    continue;
                }
                match parse_style_value(&value) {
                    Ok(pair) => style_urls.push(pair),
                    Err(e) => warnings.push(format!("style: {e}; ignored")),
                }
            }
            "init"
                if !matches!(
                    Init::parse(&value),
                    Ok(Init::Content | Init::Noise | Init::Style)
                ) =>
            {
                warnings.push(format!(
                    "init: {} is not content, noise or style (a link cannot name a file); ignored",
                    show(&value)
                ));
            }
            k if KEYS.contains(&k) => {
                if let Err(e) = overrides.set(k, &value) {
                    warnings.push(format!("{e}; ignored"));
                }
            }
            _ => warnings.push(format!("unknown key {}; ignored", show(&key))),
        }
        seen.push(key);
    }

    let base = preset_name.as_deref().and_then(preset).unwrap_or_default();
    let mut settings = base.clone();
    settings.apply(&overrides);
    if let Err(e) = settings.validate() {
        // Every value was range-checked on its own, so this is not expected; stay safe anyway.
        warnings.push(format!("{e}; the link's options were ignored"));
        settings = base;
    }
    if !style_urls.is_empty() && style_urls.iter().map(|(_, w)| *w).sum::<f32>() <= 0.0 {
        warnings.push("the style weights sum to 0; using equal weights".into());
        for (_, w) in &mut style_urls {
            *w = 1.0;
        }
    }
    link(settings, style_urls, content_url, warnings)
}

/// `WEIGHT:URL`, or a bare URL (weight 1).
fn parse_style_value(value: &str) -> Result<(String, f32), String> {
    let (weight, url) = match value.split_once(':') {
        // A number before the first ':' is a weight; otherwise the ':' belongs to the URL's scheme.
        Some((w, url)) if w.trim().parse::<f32>().is_ok() => {
            let w = parse_f32(w)
                .and_then(check_weight)
                .map_err(|e| format!("bad weight: {e}"))?;
            (w, url)
        }
        _ => (1.0, value),
    };
    check_url(url)?;
    Ok((url.to_string(), weight))
}

/// A URL a link may name: http or https with a host, bounded length, no spaces or control
/// characters. Anything else (javascript:, data:, blob:, file:...) is refused.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!(
            "the URL is {} bytes, more than {MAX_URL_BYTES}",
            url.len()
        ));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(format!("{} is not an http(s) URL", show(url)));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{} contains spaces or control characters",
            show(url)
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("{} has no host", show(url)));
    }
    Ok(())
}

/// Percent-encodes everything except unreserved characters and `:/,@` (kept readable; none of
/// them means anything to our `&`/`=` parser).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/,@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a `+` stays a `+`); refuses a bad escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => {
                    out.push(b)
                }
                _ => return Err("bad %-escape".into()),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "%-escapes that are not UTF-8".into())
}
