//! The `StyleTransfer` methods that need no GPU (usable where WebGPU is missing): defaults,
//! presets, the layer table, limits, settings validation and share links.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use super::{js_error, object, StyleTransfer};
use crate::autotune::ConvKernelChoice;
use crate::kernels::conv::Precision;
use crate::model::CONVS;
use crate::plan;
use crate::settings::{self, Settings};

#[wasm_bindgen]
impl StyleTransfer {

    /// VGG19's loss layers from the one layer table: `[{name, conv, minSide}]` in network order
    /// (`minSide`: the smallest image side that reaches the layer).
    pub fn layers() -> JsValue {
        let list = Array::new();
        for conv in &CONVS {
            let op = crate::model::layer_index(conv.relu).unwrap_or(0);
            list.push(&object(&[
                ("name", JsValue::from_str(conv.relu)),
                ("conv", JsValue::from_str(conv.conv)),
                ("minSide", JsValue::from(crate::model::min_side_for_depth(op + 1))),
            ]));
        }
        list.into()
    }

    /// The input limits the page applies before decoding: `{maxInputPixels, maxSize}`.
    pub fn limits() -> JsValue {
        object(&[
            ("maxInputPixels", JsValue::from(crate::imageio::MAX_INPUT_PIXELS as f64)),
            ("maxSize", JsValue::from(PAGE_MAX_SIDE)),
            ("defaultMemoryBudget", JsValue::from(plan::DEFAULT_MEMORY_BUDGET as f64)),
        ])
    }

    /// The default settings, as an object of strings (the CLI's forms).
    pub fn defaults() -> JsValue {
        settings_object(&Settings::default())
    }

    /// The presets: `[{name, description, settings}]`.
    pub fn presets() -> JsValue {
        let list = Array::new();
        for name in settings::preset_names() {
            let Some(preset) = settings::preset(name) else { continue };
            list.push(&object(&[
                ("name", JsValue::from_str(name)),
                ("description", JsValue::from_str(settings::preset_description(name).unwrap_or(""))),
                ("settings", settings_object(&preset)),
            ]));
        }
        list.into()
    }

    /// Validates a settings JSON object as `configure` would (starting from the defaults) and
    /// returns the full settings (an object of strings). Throws with the reason.
    #[wasm_bindgen(js_name = resolveSettings)]
    pub fn resolve_settings(json: &str) -> Result<JsValue, JsValue> {
        let mut settings = Settings::default();
        apply_settings_json(&mut settings, json)?;
        Ok(settings_object(&settings))
    }

    /// Reads a share link's fragment (with or without `#`). Never throws: unusable parts are
    /// ignored and listed in `warnings`. Returns
    /// `{settings, styles: [{url, weight}], content: url|null, warnings: [string]}`.
    #[wasm_bindgen(js_name = parseLink)]
    pub fn parse_link(fragment: &str) -> JsValue {
        let link = settings::parse_share_fragment(fragment);
        let styles = Array::new();
        for (url, weight) in &link.style_urls {
            // Through the shortest f32 text: 0.4f32 reaches JS as 0.4, not 0.4000000059604645.
            let weight: f64 = settings::fmt_float(*weight).parse().unwrap_or(1.0);
            styles.push(&object(&[("url", JsValue::from_str(url)), ("weight", JsValue::from(weight))]));
        }
        let warnings = Array::new();
        for w in &link.warnings {
            warnings.push(&JsValue::from_str(w));
        }
        object(&[
            ("settings", settings_object(&link.settings)),
            ("styles", styles.into()),
            ("content", link.content_url.as_deref().map_or(JsValue::NULL, JsValue::from_str)),
            ("warnings", warnings.into()),
        ])
    }

    /// The fragment (without `#`) of a share link for settings `json` (as `configure` takes),
    /// style images `styles_json` (`[{url, weight}]`; non-http(s) URLs, i.e. uploads, are left
    /// out) and an optional content image URL. Throws when the settings are invalid.
    #[wasm_bindgen(js_name = makeLink)]
    pub fn make_link(json: &str, styles_json: &str, content_url: Option<String>) -> Result<String, JsValue> {
        let mut settings = Settings::default();
        apply_settings_json(&mut settings, json)?;
        let styles: Vec<serde_json::Value> =
            serde_json::from_str(styles_json).map_err(|e| js_error(format!("makeLink: styles must be a JSON array: {e}")))?;
        let mut style_urls = Vec::new();
        for style in styles {
            let url = style.get("url").and_then(|u| u.as_str()).unwrap_or_default().to_string();
            let weight = style.get("weight").and_then(|w| w.as_f64()).unwrap_or(1.0) as f32;
            style_urls.push((url, weight));
        }
        Ok(settings::to_share_fragment_with_content(&settings, content_url.as_deref(), &style_urls))
    }
}

/// The engine options `configure` takes beside the settings: how the engine computes, not what the
/// picture is, so not in links (`--conv-kernel` and `--precision` in the CLI).
#[derive(Default)]
pub(super) struct EngineOptions {
    /// `conv_kernel`: `"auto"` or a variant's name.
    pub conv_kernel: Option<ConvKernelChoice>,
    /// `precision`: `"f32"` or `"f16"`.
    pub precision: Option<Precision>,
}

/// `Settings::apply_json` plus the page's convention that `"preset": ""` means "no preset: the defaults".
/// Also takes the [`EngineOptions`], returned when given. On any error nothing changes.
pub(super) fn apply_settings_json(settings: &mut Settings, json: &str) -> Result<EngineOptions, JsValue> {
    let mut value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| js_error(format!("settings must be a JSON object: {e}")))?;
    let mut next = settings.clone();
    let mut options = EngineOptions::default();
    if let Some(map) = value.as_object_mut() {
        if map.get("preset").and_then(|p| p.as_str()) == Some("") {
            map.remove("preset");
            next = Settings::default();
        }
        if let Some(v) = map.remove("conv_kernel") {
            let text = v.as_str().ok_or_else(|| js_error("conv_kernel: expected a string, e.g. \"auto\""))?;
            options.conv_kernel = Some(ConvKernelChoice::parse(text).map_err(|e| js_error(format!("conv_kernel: {e}")))?);
        }
        if let Some(v) = map.remove("precision") {
            let text = v.as_str().ok_or_else(|| js_error("precision: expected a string, \"f32\" or \"f16\""))?;
            options.precision = Some(Precision::parse(text).map_err(|e| js_error(format!("precision: {e}")))?);
        }
    }
    next.apply_json(&value.to_string()).map_err(|e| js_error(settings_error_text(&e)))?;
    *settings = next;
    Ok(options)
}

/// The longest side the page runs (output and style images). The CLI goes to 8192, but there a
/// relu1 map has 2^32 elements, past wasm32's 32-bit sizes. Checked where runs are planned.
pub(super) const PAGE_MAX_SIDE: u32 = 4096;

pub(super) fn check_page_sides(settings: &Settings) -> Result<(), JsValue> {
    let most = settings::SIZE_RANGE.1;
    if settings.size > PAGE_MAX_SIDE {
        return Err(js_error(format!(
            "size {}: the page runs sizes up to {PAGE_MAX_SIDE} px (the command line goes to {most})",
            settings.size
        )));
    }
    let side = plan::style_side(settings);
    if side > PAGE_MAX_SIDE {
        return Err(js_error(format!(
            "the style images would be resized to {side} px (style_scale {} × size {}): the page allows up to {PAGE_MAX_SIDE} px",
            settings.style_scale, settings.size
        )));
    }
    Ok(())
}

fn settings_error_text(e: &settings::SettingsError) -> String {
    if e.key.is_empty() {
        e.reason.clone()
    } else {
        format!("{}: {}", e.key, e.reason)
    }
}

/// Every setting in its string form (what the form shows and what parses back exactly), plus `preset`.
pub(super) fn settings_object(settings: &Settings) -> JsValue {
    let obj = Object::new();
    for key in std::iter::once("preset").chain(settings::KEYS) {
        let value = settings.get(key).unwrap_or_default();
        let _ = Reflect::set(&obj, &JsValue::from_str(key), &JsValue::from_str(&value));
    }
    obj.into()
}
