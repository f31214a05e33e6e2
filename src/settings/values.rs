//! Value parsers and range checks of the settings: one place for every message.

use super::*;

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

pub(super) fn parse_f32(s: &str) -> Result<f32, String> {
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
pub(super) fn parse_u64(s: &str) -> Result<u64, String> {
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

pub(super) fn parse_u32_in(s: &str, (lo, hi): (u32, u32)) -> Result<u32, String> {
    let v = parse_u64(s).map_err(|e| format!("{e}; expected {lo} to {hi}"))?;
    if v < lo as u64 || v > hi as u64 {
        return Err(format!(
            "{} is out of range; expected {lo} to {hi}",
            show(s.trim())
        ));
    }
    Ok(v as u32)
}

pub(super) fn in_range_u32(v: u32, (lo, hi): (u32, u32)) -> Result<(), String> {
    if v < lo || v > hi {
        return Err(format!("{v} is out of range; expected {lo} to {hi}"));
    }
    Ok(())
}

pub(super) fn check_lr(v: f32) -> Result<f32, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a finite number > 0, got {}", fmt_float(v)))
    }
}

pub(super) fn check_weight(v: f32) -> Result<f32, String> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a finite number >= 0, got {}", fmt_float(v)))
    }
}

pub(super) fn check_style_scale(v: f32) -> Result<f32, String> {
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

pub(super) fn check_layers(layers: &[LayerWeight]) -> Result<(), String> {
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

pub(super) fn check_blend(weights: &[f32]) -> Result<(), String> {
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

/// `min_size`: 0 (the smallest that reaches the deepest layer) or an output size.
pub(super) fn parse_min_size(s: &str) -> Result<u32, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    let (lo, hi) = SIZE_RANGE;
    parse_u32_in(s, SIZE_RANGE).map_err(|_| format!("expected 0 (automatic) or a size from {lo} to {hi}, got {}", show(s)))
}
