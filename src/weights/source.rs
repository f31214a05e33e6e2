//! Reading `shared/weights-src`: manifest.json plus raw little-endian float32 files.

use super::*;
use serde_json::Value;

fn manifest_err(message: String) -> WeightsError {
    err(
        WeightsErrorKind::Manifest,
        format!("{message}; the source directory must be an unmodified copy of shared/weights-src (see its PROVENANCE.md)"),
    )
}

fn as_usizes(v: Option<&Value>) -> Option<Vec<usize>> {
    v?.as_array()?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect()
}

/// Parses the numbers inside the first `[...]` of `text`, e.g. the mean in
/// "x_bgr - [103.939, 116.779, 123.68] (per-channel mean in B,G,R order)".
fn bracketed_numbers(text: &str) -> Option<Vec<f32>> {
    let open = text.find('[')?;
    let close = open + text[open..].find(']')?;
    text[open + 1..close]
        .split(',')
        .map(|s| s.trim().parse::<f32>().ok())
        .collect()
}

/// The input convention from manifest.json's `input` section. It states the channel
/// order, the range ("0..255" → scale 255), and the mean either as `mean` (an array) or
/// inside the `preprocessing` text, in the channel order.
fn input_convention(manifest: &Value) -> Result<InputConvention, WeightsError> {
    let input = manifest
        .get("input")
        .ok_or_else(|| manifest_err("manifest.json has no \"input\" section".into()))?;
    let order = input.get("channel_order").and_then(Value::as_str).unwrap_or("");
    if order != "BGR" && order != "RGB" {
        return Err(manifest_err(format!(
            "manifest.json input.channel_order is {order:?}, expected \"BGR\" or \"RGB\""
        )));
    }
    let scale = match input.get("scale").and_then(Value::as_f64) {
        Some(s) => Some(s as f32),
        None => input
            .get("range")
            .and_then(Value::as_str)
            .and_then(|r| r.split_once(".."))
            .filter(|(lo, _)| lo.trim() == "0")
            .and_then(|(_, hi)| hi.trim().parse::<f32>().ok()),
    }
    .filter(|s| s.is_finite() && *s > 0.0)
    .ok_or_else(|| {
        manifest_err("manifest.json input has neither a positive \"scale\" nor a \"range\" like \"0..255\"".into())
    })?;
    let mean = match input.get("mean").and_then(Value::as_array) {
        Some(a) => a.iter().map(|v| v.as_f64().map(|m| m as f32)).collect::<Option<Vec<f32>>>(),
        None => input.get("preprocessing").and_then(Value::as_str).and_then(bracketed_numbers),
    }
    .filter(|m| m.len() == 3 && m.iter().all(|v| v.is_finite()))
    .ok_or_else(|| {
        manifest_err("manifest.json input gives no 3-channel mean (neither \"mean\" nor a [b, g, r] list in \"preprocessing\")".into())
    })?;
    Ok(InputConvention {
        channel_order: order.to_string(),
        scale,
        mean: [mean[0], mean[1], mean[2]],
    })
}

/// Reads one raw float32 tensor and checks its length and sha256 against the manifest.
fn read_tensor(
    dir: &Path,
    layer: &str,
    role: &str,
    spec: &Value,
    want_elems: usize,
) -> Result<Vec<f32>, WeightsError> {
    let file = spec
        .get("file")
        .and_then(Value::as_str)
        .filter(|f| !f.contains('/') && !f.contains('\\') && !f.starts_with('.'))
        .ok_or_else(|| {
            manifest_err(format!(
                "manifest.json: layer {layer} {role} has no plain \"file\" name"
            ))
        })?;
    let bytes_field = spec.get("bytes").and_then(Value::as_u64);
    let want_bytes = want_elems as u64 * 4;
    if bytes_field != Some(want_bytes) {
        return Err(manifest_err(format!(
            "manifest.json: layer {layer} {role} lists {bytes_field:?} bytes but its shape needs {want_bytes}"
        )));
    }
    let want_sha = spec
        .get("sha256")
        .and_then(Value::as_str)
        .filter(|s| s.len() == 64)
        .ok_or_else(|| manifest_err(format!("manifest.json: layer {layer} {role} has no sha256")))?;
    let path = dir.join(file);
    let data = std::fs::read(&path).map_err(|e| {
        err(
            WeightsErrorKind::Io,
            format!(
                "cannot read {} ({e}); the source directory is incomplete",
                path.display()
            ),
        )
    })?;
    if (data.len() as u64) < want_bytes {
        return Err(err(
            WeightsErrorKind::Truncated,
            format!(
                "{file} is truncated: {} bytes, the manifest says {want_bytes}; copy the source directory again",
                data.len()
            ),
        ));
    }
    if data.len() as u64 != want_bytes {
        return Err(manifest_err(format!(
            "{file} has {} bytes, the manifest says {want_bytes}",
            data.len()
        )));
    }
    let got_sha = hex(&sha256(&[&data]));
    if !got_sha.eq_ignore_ascii_case(want_sha) {
        return Err(err(
            WeightsErrorKind::Checksum,
            format!("bad checksum: {file} has sha256 {got_sha} but the manifest says {want_sha}; the file is corrupted, copy it again"),
        ));
    }
    let values = f32s_from_le(&data);
    if let Some((i, v)) = first_non_finite(&values) {
        return Err(non_finite(layer, role, i, v).in_path(&path));
    }
    Ok(values)
}

pub(super) fn read_dir(dir: &Path) -> Result<Weights, WeightsError> {
    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
        err(
            WeightsErrorKind::Io,
            format!(
                "cannot read {} ({e}); a weights source directory (like ../shared/weights-src) holds manifest.json and the raw .f32 files",
                manifest_path.display()
            ),
        )
    })?;
    let manifest: Value =
        serde_json::from_str(&text).map_err(|e| manifest_err(format!("manifest.json is not valid JSON ({e})")))?;
    let input = input_convention(&manifest)?;
    let entries = manifest
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| manifest_err("manifest.json has no \"layers\" list".into()))?;
    if entries.len() > VGG19_CONVS.len() {
        return Err(manifest_err(format!(
            "manifest.json lists {} layers; VGG19 has 16 convolutions",
            entries.len()
        )));
    }
    let mut layers: Vec<ConvWeights> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let name = entry.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
        if name != VGG19_CONVS[index].conv {
            return Err(missing_layer(index, Some(name), index));
        }
        let (weight, bias) = match (entry.get("weight"), entry.get("bias")) {
            (Some(w), Some(b)) => (w, b),
            _ => {
                return Err(manifest_err(format!(
                    "manifest.json: layer {name} lacks \"weight\" or \"bias\""
                )))
            }
        };
        if let Some(layout) = weight.get("layout").and_then(Value::as_str) {
            if layout != "HWIO" {
                return Err(manifest_err(format!(
                    "manifest.json: layer {name} has layout {layout:?}; this reader expects HWIO"
                )));
            }
        }
        let shape = as_usizes(weight.get("shape")).unwrap_or_default();
        let [3, 3, cin, cout] = shape[..] else {
            return Err(err(
                WeightsErrorKind::ShapeMismatch,
                format!("shape mismatch: layer {name} kernel shape {shape:?} is not HWIO [3, 3, cin, cout]"),
            ));
        };
        check_layer_shape(index, name, cin, cout, layers.last().map(|l| l.cout))?;
        if as_usizes(bias.get("shape")) != Some(vec![cout]) {
            return Err(err(
                WeightsErrorKind::ShapeMismatch,
                format!(
                    "shape mismatch: layer {name} bias shape is {:?}, expected [{cout}]",
                    bias.get("shape")
                ),
            ));
        }
        let hwio = read_tensor(dir, name, "kernel", weight, 9 * cin * cout)?;
        let bias = read_tensor(dir, name, "bias", bias, cout)?;
        // HWIO (ky,kx,ci,co) at ((ky*3+kx)*cin+ci)*cout+co  →  OHWI at ((co*3+ky)*3+kx)*cin+ci.
        let mut kernel = vec![0.0f32; hwio.len()];
        for tap in 0..9 {
            for ci in 0..cin {
                let src = &hwio[(tap * cin + ci) * cout..][..cout];
                for (co, &w) in src.iter().enumerate() {
                    kernel[(co * 9 + tap) * cin + ci] = w;
                }
            }
        }
        layers.push(ConvWeights {
            name: name.to_string(),
            cin,
            cout,
            kernel,
            bias,
        });
    }
    complete(layers, input, WeightsDtype::F32)
}
