//! The settings as JSON: what the JS API's `configure` reads and `settings()` gives back.

use super::*;

impl Settings {
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
        map.insert("scales".into(), self.scales.name().into());
        map.insert("min_size".into(), self.min_size.into());
        map.insert("scale_steps".into(), self.scale_steps.into());
        map.insert("colour".into(), self.colour.name().into());
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
