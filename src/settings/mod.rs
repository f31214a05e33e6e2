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

mod json;
mod link;
mod values;
pub use values::{fmt_float, format_layers, parse_blend, parse_layers, show};
use values::*;
pub use link::{check_url, parse_share_fragment, percent_decode, percent_encode, to_share_fragment, to_share_fragment_with_content, ShareLink};

/// Option keys (snake_case CLI option names) in the order they are documented and serialised.
/// `preset` is not in this list: it is applied before all of these.
pub const KEYS: [&str; 20] = [
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
    "scales",
    "min_size",
    "scale_steps",
    "colour",
];

/// Ranges, shared by validation and error messages (the page's controls are checked by this code too).
pub const SIZE_RANGE: (u32, u32) = (16, 8192);
pub const STEPS_RANGE: (u32, u32) = (0, 100_000);
pub const LBFGS_HISTORY_RANGE: (u32, u32) = (1, 100);
pub const STYLE_SCALE_RANGE: (f32, f32) = (0.05, 8.0);
/// `scales N`: at most this many scales in a coarse-to-fine schedule.
pub const MAX_SCALES: u32 = 12;
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

/// The result's colours (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer"; YIQ
/// throughout): the style's, as optimised; the content's chroma with the result's luminance
/// (`luma-swap`, applied to the final image); luminance-only transfer (`luminance`: the photo and the
/// painting reduced to luminance, the painting's matched to the photo's mean and variance, the image
/// optimised as grey (Y, Y, Y), the photo's chroma put back at the end); or the painting's colours
/// matched to the photo's mean and covariance before the transfer (`histogram`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColourMode {
    KeepStyle,
    LumaSwap,
    Luminance,
    Histogram,
}

impl ColourMode {
    pub const ALL: [ColourMode; 4] = [ColourMode::KeepStyle, ColourMode::LumaSwap, ColourMode::Luminance, ColourMode::Histogram];

    pub fn name(self) -> &'static str {
        match self {
            ColourMode::KeepStyle => "keep-style",
            ColourMode::LumaSwap => "luma-swap",
            ColourMode::Luminance => "luminance",
            ColourMode::Histogram => "histogram",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        ColourMode::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ColourMode::ALL.iter().map(|m| m.name()).collect();
            format!("expected one of {}, got {}", names.join(", "), show(s))
        })
    }

    /// Whether the final image takes the content's chroma (its luminance kept).
    pub fn keeps_content_chroma(self) -> bool {
        matches!(self, ColourMode::LumaSwap | ColourMode::Luminance)
    }
}

/// The coarse-to-fine schedule: one scale, scales √2 apart from the start size, or N scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scales {
    Off,
    Auto,
    Count(u32),
}

impl Scales {
    pub fn name(self) -> String {
        match self {
            Scales::Off => "off".into(),
            Scales::Auto => "auto".into(),
            Scales::Count(n) => n.to_string(),
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" => Ok(Scales::Off),
            "auto" => Ok(Scales::Auto),
            other => match other.parse::<u32>() {
                Ok(n) if (1..=MAX_SCALES).contains(&n) => Ok(Scales::Count(n)),
                _ => Err(format!("expected off, auto or a number of scales from 1 to {MAX_SCALES}, got {}", show(s))),
            },
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
    /// The coarse-to-fine schedule ([`crate::plan::schedule`]).
    pub scales: Scales,
    /// Longest side of the first scale; 0 = the smallest that reaches the deepest layer.
    pub min_size: u32,
    /// Steps at each scale before the last (which runs `steps`).
    pub scale_steps: u32,
    pub colour: ColourMode,
    /// The preset these settings started from (for share links); `None` = the defaults.
    pub preset: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            size: 512,
            // The last scale's steps: with the schedule below, 225 step-equivalents at 256 px and 244
            // at 512 (README, "Coarse to fine").
            steps: 150,
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
            scales: Scales::Auto,
            min_size: 128,
            scale_steps: 100,
            colour: ColourMode::KeepStyle,
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
        "default" => {
            "the defaults: Adam lr 0.02 at 512 px, coarse to fine from 128 px (scales √2 apart, 100 steps \
             each, then 150 at 512 px), content 5, style 100"
        }
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
            scales: Scales::Off,
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
            scales: Scales::Off,
            ..base
        },
        "fast" => Settings {
            size: 256,
            steps: 100,
            lr: 0.03,
            scales: Scales::Off,
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
    pub scales: Option<Scales>,
    pub min_size: Option<u32>,
    pub scale_steps: Option<u32>,
    pub colour: Option<ColourMode>,
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
            "scales" => self.scales = Some(Scales::parse(value).map_err(err)?),
            "min_size" => self.min_size = Some(parse_min_size(value).map_err(err)?),
            "scale_steps" => self.scale_steps = Some(parse_u32_in(value, STEPS_RANGE).map_err(err)?),
            "colour" => self.colour = Some(ColourMode::parse(value).map_err(err)?),
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
            style_blend,
            scales,
            min_size,
            scale_steps,
            colour
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
        check("scales", Scales::parse(&self.scales.name()).map(drop))?;
        check("min_size", parse_min_size(&self.min_size.to_string()).map(drop))?;
        check("scale_steps", in_range_u32(self.scale_steps, STEPS_RANGE))?;
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
            "scales" => self.scales.name(),
            "min_size" => self.min_size.to_string(),
            "scale_steps" => self.scale_steps.to_string(),
            "colour" => self.colour.name().to_string(),
            _ => return None,
        })
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
