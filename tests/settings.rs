//! Settings: parsing, defaults, presets, `configure(json)` and share links, including hostile input.

use stylize::settings::{
    self, parse_layers, parse_share_fragment, preset, preset_names, to_share_fragment,
    to_share_fragment_with_content, Init, LayerWeight, LossForm, OptimizerChoice, Overrides,
    Pooling, Settings,
};

fn lw(layer: &str, weight: f32) -> LayerWeight {
    LayerWeight::new(layer, weight)
}

// ------------------------------------------------------------------------------------------
// Defaults and presets

#[test]
fn defaults_are_the_documented_ones() {
    let s = Settings::default();
    assert_eq!(s.size, 512);
    assert_eq!(s.steps, 150);
    assert_eq!((s.scales, s.min_size, s.scale_steps), (stylize::settings::Scales::Auto, 128, 100));
    assert_eq!(s.optimizer, OptimizerChoice::Adam);
    assert_eq!(s.lr, 0.02);
    assert_eq!(s.lbfgs_history, 5);
    assert_eq!(
        (s.content_weight, s.style_weight, s.tv_weight),
        (5.0, 100.0, 0.0)
    );
    assert_eq!(s.content_layers, vec![lw("relu4_2", 1.0)]);
    let style: Vec<_> = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
        .iter()
        .map(|l| lw(l, 1.0))
        .collect();
    assert_eq!(s.style_layers, style);
    assert_eq!(s.pooling, Pooling::Max);
    assert_eq!(s.init, Init::Content);
    assert_eq!(s.seed, 0);
    assert_eq!(s.loss_form, LossForm::Canonical);
    assert_eq!(s.style_scale, 1.0);
    assert!(s.style_blend.is_empty());
    assert_eq!(s.preset, None);
    s.validate().unwrap();
}

#[test]
fn seed_preset_matches_issue_2() {
    let s = preset("seed").unwrap();
    assert_eq!(s.loss_form, LossForm::Seed);
    assert_eq!(s.content_layers, vec![lw("relu4_2", 1.0)]);
    assert_eq!(
        s.style_layers,
        vec![
            lw("relu1_1", 1.0),
            lw("relu2_1", 0.75),
            lw("relu3_1", 0.2),
            lw("relu4_1", 0.2),
            lw("relu5_1", 0.2)
        ]
    );
    assert_eq!((s.content_weight, s.style_weight), (1.0, 1e6));
    assert_eq!(
        (s.optimizer, s.lr, s.steps, s.size),
        (OptimizerChoice::Adam, 0.003, 2000, 400)
    );
    assert_eq!(s.init, Init::Content);
    assert_eq!(s.preset.as_deref(), Some("seed"));
}

#[test]
fn neural_style_preset_is_lbfgs_from_noise() {
    let s = preset("neural-style").unwrap();
    assert_eq!(
        (s.optimizer, s.lr, s.steps, s.size),
        (OptimizerChoice::Lbfgs, 1.0, 1000, 512)
    );
    assert_eq!(
        (s.content_weight, s.style_weight, s.tv_weight),
        (5.0, 100.0, 1e-3)
    );
    assert_eq!(s.init, Init::Noise);
}

#[test]
fn every_preset_is_valid_named_and_described() {
    for name in preset_names() {
        let s = preset(name).unwrap_or_else(|| panic!("preset {name} missing"));
        s.validate()
            .unwrap_or_else(|e| panic!("preset {name}: {e}"));
        assert_eq!(s.preset.as_deref(), Some(*name));
        assert!(settings::preset_description(name).is_some());
    }
    assert!(preset("nope").is_none());
    assert!(preset("").is_none());
    assert!(preset("SEED").is_none());
    assert_eq!(
        preset("default").unwrap(),
        Settings {
            preset: Some("default".into()),
            ..Settings::default()
        }
    );
}

// ------------------------------------------------------------------------------------------
// Layer lists

#[test]
fn layer_lists_parse_with_and_without_weights() {
    assert_eq!(parse_layers("relu4_2").unwrap(), vec![lw("relu4_2", 1.0)]);
    assert_eq!(
        parse_layers("relu1_1:0.5, relu5_4:2 ,relu3_3").unwrap(),
        vec![lw("relu1_1", 0.5), lw("relu5_4", 2.0), lw("relu3_3", 1.0)]
    );
    assert_eq!(parse_layers("relu2_1:0").unwrap(), vec![lw("relu2_1", 0.0)]);
    assert_eq!(
        parse_layers("relu2_1:1e-3").unwrap(),
        vec![lw("relu2_1", 1e-3)]
    );
    let all = stylize::model::relu_layer_names().join(",");
    assert_eq!(parse_layers(&all).unwrap().len(), 16);
}

#[test]
fn layer_list_errors_name_the_bad_token_and_list_valid_names() {
    let e = parse_layers("relu1_1,relu6_1:2").unwrap_err();
    assert!(e.contains("'relu6_1'") && e.contains("'relu6_1:2'"), "{e}");
    assert!(
        e.contains("relu1_1, relu1_2, relu2_1") && e.contains("relu5_4"),
        "{e}"
    );
    for (bad, needle) in [
        ("", "empty"),
        ("   ", "empty"),
        ("relu1_1,", "empty entry"),
        (",relu1_1", "empty entry"),
        ("relu1_1,relu1_1", "twice"),
        ("relu1_1:1,relu1_1:2", "twice"),
        ("relu1_1:-1", "'relu1_1:-1'"),
        ("relu1_1:abc", "'relu1_1:abc'"),
        ("relu1_1:nan", "finite"),
        ("relu1_1:inf", "finite"),
        ("relu1_1:1e40", "finite"),
        ("relu1_1:", "'relu1_1:'"),
        ("RELU1_1", "unknown layer"),
        ("conv1_1", "unknown layer"),
        ("pool1", "unknown layer"),
        ("relu1_1:1:2", "'relu1_1:1:2'"),
    ] {
        let e = parse_layers(bad).expect_err(bad);
        assert!(e.contains(needle), "{bad:?}: {e}");
    }
}

#[test]
fn layer_lists_format_and_parse_back() {
    let layers = vec![lw("relu1_1", 1.0), lw("relu2_1", 0.75), lw("relu5_4", 1e-7)];
    let text = settings::format_layers(&layers);
    assert_eq!(text, "relu1_1,relu2_1:0.75,relu5_4:1e-7");
    assert_eq!(parse_layers(&text).unwrap(), layers);
}

// ------------------------------------------------------------------------------------------
// Overrides (the CLI path) and validation

fn resolve(
    preset: Option<&str>,
    pairs: &[(&str, &str)],
) -> Result<Settings, settings::SettingsError> {
    let mut o = Overrides::default();
    for (k, v) in pairs {
        o.set(k, v)?;
    }
    Settings::resolve(preset, &o)
}

#[test]
fn options_override_the_preset_which_overrides_the_defaults() {
    let s = resolve(Some("seed"), &[("steps", "10"), ("style_weight", "2.5")]).unwrap();
    assert_eq!(
        (s.steps, s.style_weight, s.size, s.loss_form),
        (10, 2.5, 400, LossForm::Seed)
    );
    let s = resolve(None, &[("size", "128")]).unwrap();
    assert_eq!((s.size, s.steps), (128, 150));
    assert!(resolve(Some("bogus"), &[])
        .unwrap_err()
        .to_string()
        .contains("unknown preset 'bogus'"));
}

#[test]
fn changing_the_optimizer_without_lr_takes_its_default_lr() {
    assert_eq!(resolve(None, &[("optimizer", "lbfgs")]).unwrap().lr, 1.0);
    assert_eq!(
        resolve(None, &[("optimizer", "lbfgs"), ("lr", "0.5")])
            .unwrap()
            .lr,
        0.5
    );
    assert_eq!(resolve(None, &[("optimizer", "adam")]).unwrap().lr, 0.02);
    // Same optimizer as the preset: its lr stays.
    assert_eq!(
        resolve(Some("seed"), &[("optimizer", "adam")]).unwrap().lr,
        0.003
    );
    assert_eq!(
        resolve(Some("neural-style"), &[("optimizer", "adam")])
            .unwrap()
            .lr,
        0.02
    );
    assert_eq!(resolve(Some("neural-style"), &[]).unwrap().lr, 1.0);
}

#[test]
fn every_value_is_range_checked() {
    let ok = [
        ("size", "16"),
        ("size", "8192"),
        ("size", "512.0"),
        ("steps", "0"),
        ("steps", "100000"),
        ("lr", "1e-6"),
        ("lbfgs_history", "1"),
        ("lbfgs_history", "100"),
        ("content_weight", "0"),
        ("style_weight", "1e30"),
        ("tv_weight", "0.001"),
        ("style_scale", "0.05"),
        ("style_scale", "8"),
        ("seed", "18446744073709551615"),
        ("seed", " 42 "),
        ("init", "noise"),
        ("init", "some/file.png"),
        ("style_blend", "0.7,0.3"),
        ("style_blend", "0,1"),
        ("style_blend", ""),
        ("pooling", "avg"),
        ("loss_form", "seed"),
    ];
    for (k, v) in ok {
        resolve(None, &[(k, v)]).unwrap_or_else(|e| panic!("{k}={v:?}: {e}"));
    }
    let bad = [
        ("size", "15"),
        ("size", "8193"),
        ("size", "-1"),
        ("size", "12.5"),
        ("size", "abc"),
        ("size", ""),
        ("size", "99999999999999999999999"),
        ("steps", "100001"),
        ("lr", "0"),
        ("lr", "-0.1"),
        ("lr", "nan"),
        ("lr", "inf"),
        ("lr", "1e39"),
        ("lbfgs_history", "0"),
        ("lbfgs_history", "101"),
        ("content_weight", "-1"),
        ("style_weight", "NaN"),
        ("tv_weight", "-inf"),
        ("style_scale", "0.04"),
        ("style_scale", "8.5"),
        ("seed", "-1"),
        ("seed", "18446744073709551616"),
        ("seed", "1.5"),
        ("optimizer", "sgd"),
        ("optimizer", "Adam"),
        ("pooling", "min"),
        ("loss_form", "tutorial"),
        ("init", ""),
        ("style_blend", "0,0"),
        ("style_blend", "-1,2"),
        ("style_blend", "1,x"),
        ("style_blend", "1,,2"),
        ("content_layers", ""),
        ("style_layers", "relu9_9"),
    ];
    for (k, v) in bad {
        let e = resolve(None, &[(k, v)]).expect_err(&format!("{k}={v:?} should fail"));
        assert_eq!(e.key, k, "{e}");
        assert!(!e.reason.is_empty());
        assert!(
            e.cli_message()
                .starts_with(&format!("--{}: ", k.replace('_', "-"))),
            "{}",
            e.cli_message()
        );
    }
    let mut o = Overrides::default();
    assert!(o
        .set("sharpness", "red")
        .unwrap_err()
        .to_string()
        .contains("unknown option 'sharpness'"));
    assert!(o.set("colour", "red").unwrap_err().to_string().contains("colour: expected one of keep-style, luma-swap, luminance, histogram"));
}

#[test]
fn validate_catches_bad_fields_set_directly() {
    type Change = Box<dyn Fn(&mut Settings)>;
    let cases: Vec<(&str, Change)> = vec![
        ("size", Box::new(|s| s.size = 8)),
        ("lr", Box::new(|s| s.lr = f32::NAN)),
        ("lr", Box::new(|s| s.lr = 0.0)),
        ("style_weight", Box::new(|s| s.style_weight = f32::INFINITY)),
        ("content_layers", Box::new(|s| s.content_layers.clear())),
        (
            "style_layers",
            Box::new(|s| s.style_layers.push(lw("relu1_1", 1.0))),
        ),
        (
            "style_layers",
            Box::new(|s| s.style_layers[0].weight = -1.0),
        ),
        (
            "style_layers",
            Box::new(|s| s.style_layers[0].layer = "relu1_1,relu2_2".into()),
        ),
        (
            "content_layers",
            Box::new(|s| s.content_layers[0].layer = "fc7".into()),
        ),
        ("init", Box::new(|s| s.init = Init::Path(String::new()))),
        ("style_blend", Box::new(|s| s.style_blend = vec![0.0])),
        ("style_blend", Box::new(|s| s.style_blend = vec![1.0; 17])),
        ("preset", Box::new(|s| s.preset = Some("bogus".into()))),
        ("lbfgs_history", Box::new(|s| s.lbfgs_history = 0)),
        ("style_scale", Box::new(|s| s.style_scale = 0.0)),
    ];
    for (key, change) in cases {
        let mut s = Settings::default();
        change(&mut s);
        assert_eq!(s.validate().unwrap_err().key, key);
    }
}

// ------------------------------------------------------------------------------------------
// configure(json)

#[test]
fn json_configure_applies_preset_first_then_keys() {
    let mut s = Settings::default();
    s.apply_json(r#"{"steps": 10, "preset": "seed", "size": 64}"#)
        .unwrap();
    assert_eq!(
        (s.steps, s.size, s.style_weight, s.preset.as_deref()),
        (10, 64, 1e6, Some("seed"))
    );
    // A later call without a preset keeps the current settings.
    s.apply_json(r#"{"lr": 0.01}"#).unwrap();
    assert_eq!(
        (s.steps, s.lr, s.preset.as_deref()),
        (10, 0.01, Some("seed"))
    );
}

#[test]
fn json_configure_accepts_every_key() {
    let mut s = Settings::default();
    s.apply_json(
        r#"{"size": 256, "steps": 50, "optimizer": "lbfgs", "lr": 0.5, "lbfgs_history": 7,
            "content_weight": 2, "style_weight": 1e4, "tv_weight": 0.01,
            "content_layers": "relu4_2:2,relu5_1", "style_layers": {"relu1_1": 0.5, "relu2_1": 1},
            "pooling": "avg", "init": "noise", "seed": "12345678901234567890", "loss_form": "seed",
            "style_scale": 0.5, "style_blend": [0.7, 0.3], "scales": 3, "min_size": 64, "scale_steps": 40}"#,
    )
    .unwrap();
    let expected = Settings {
        size: 256,
        steps: 50,
        optimizer: OptimizerChoice::Lbfgs,
        lr: 0.5,
        lbfgs_history: 7,
        content_weight: 2.0,
        style_weight: 1e4,
        tv_weight: 0.01,
        content_layers: vec![lw("relu4_2", 2.0), lw("relu5_1", 1.0)],
        style_layers: vec![lw("relu1_1", 0.5), lw("relu2_1", 1.0)],
        pooling: Pooling::Avg,
        init: Init::Noise,
        seed: 12345678901234567890,
        loss_form: LossForm::Seed,
        style_scale: 0.5,
        style_blend: vec![0.7, 0.3],
        scales: stylize::settings::Scales::Count(3),
        min_size: 64,
        scale_steps: 40,
        colour: stylize::settings::ColourMode::KeepStyle,
        preset: None,
    };
    assert_eq!(s, expected);
    // to_json gives all of it back.
    let mut t = preset("fast").unwrap();
    t.apply_json(&s.to_json()).unwrap();
    assert_eq!(
        t,
        Settings {
            preset: Some("fast".into()),
            ..expected.clone()
        }
    );
    let mut u = Settings::default();
    u.apply_json(&preset("seed").unwrap().to_json()).unwrap();
    assert_eq!(u, preset("seed").unwrap());
}

#[test]
fn json_configure_errors_give_the_reason_and_change_nothing() {
    let cases = [
        ("", "JSON object"),
        ("[1,2]", "JSON object"),
        ("42", "JSON object"),
        ("{", "JSON object"),
        (r#"{"sharpness": "red"}"#, "unknown option 'sharpness'"),
        (r#"{"colour": "red"}"#, "colour: expected one of keep-style, luma-swap, luminance, histogram"),
        (r#"{"size": 8}"#, "size: '8' is out of range"),
        (r#"{"size": "big"}"#, "size"),
        (r#"{"size": true}"#, "a boolean"),
        (r#"{"size": null}"#, "null"),
        (r#"{"size": 1e400}"#, "JSON object"),
        (r#"{"lr": -1}"#, "lr: must be a finite number > 0"),
        (r#"{"optimizer": "sgd"}"#, "unknown optimizer 'sgd'"),
        (r#"{"preset": "nope"}"#, "unknown preset 'nope'"),
        (r#"{"preset": 3}"#, "preset name"),
        (r#"{"style_layers": "relu9_1"}"#, "unknown layer 'relu9_1'"),
        (r#"{"style_layers": ["relu1_1"]}"#, "style_layers"),
        (r#"{"style_layers": {"relu1_1": "x"}}"#, "must be a number"),
        (r#"{"style_layers": {}}"#, "empty"),
        (r#"{"style_blend": ["a"]}"#, "array of numbers"),
        (r#"{"style_blend": [0, 0]}"#, "positive"),
        (r#"{"seed": -5}"#, "seed"),
        (r#"{"steps": 10, "content_weight": -2}"#, "content_weight"),
    ];
    for (json, needle) in cases {
        let mut s = preset("fast").unwrap();
        let before = s.clone();
        let e = s.apply_json(json).expect_err(json).to_string();
        assert!(e.contains(needle), "{json}: {e}");
        assert_eq!(s, before, "{json} changed the settings");
    }
}

// ------------------------------------------------------------------------------------------
// Share links

/// A small deterministic generator (xorshift64*) for random settings.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self) -> bool {
        self.next() & 1 == 1
    }
    /// A float with any mantissa bits, in roughly [lo, hi].
    fn float(&mut self, lo: f32, hi: f32) -> f32 {
        let t = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        let v = lo + (hi - lo) * t;
        if self.chance() {
            v
        } else {
            // Awkward values: random bits near v.
            f32::from_bits(v.to_bits() ^ (self.next() as u32 & 0xff)).clamp(lo, hi)
        }
    }
    fn layers(&mut self) -> Vec<LayerWeight> {
        let mut names: Vec<&str> = stylize::model::relu_layer_names();
        let n = 1 + self.below(5) as usize;
        (0..n)
            .map(|_| {
                let name = names.remove(self.below(names.len() as u64) as usize);
                let w = if self.chance() {
                    1.0
                } else {
                    self.float(0.0, 1e3)
                };
                lw(name, w)
            })
            .collect()
    }
}

fn random_settings(rng: &mut Rng) -> Settings {
    let base_name = preset_names()[rng.below(4) as usize];
    let mut s = if rng.below(5) == 0 {
        Settings::default()
    } else {
        preset(base_name).unwrap()
    };
    // Change a random subset of the fields.
    if rng.chance() {
        s.size = 16 + rng.below(4081) as u32;
    }
    if rng.chance() {
        s.steps = rng.below(100001) as u32;
    }
    if rng.chance() {
        s.optimizer = if rng.chance() {
            OptimizerChoice::Adam
        } else {
            OptimizerChoice::Lbfgs
        };
    }
    if rng.chance() {
        s.lr = rng.float(1e-6, 10.0).max(1e-6);
    }
    if rng.chance() {
        s.lbfgs_history = 1 + rng.below(100) as u32;
    }
    if rng.chance() {
        s.content_weight = rng.float(0.0, 1e6);
    }
    if rng.chance() {
        s.style_weight = rng.float(0.0, 1e9);
    }
    if rng.chance() {
        s.tv_weight = rng.float(0.0, 1.0);
    }
    if rng.chance() {
        s.content_layers = rng.layers();
    }
    if rng.chance() {
        s.style_layers = rng.layers();
    }
    if rng.chance() {
        s.pooling = if rng.chance() {
            Pooling::Max
        } else {
            Pooling::Avg
        };
    }
    if rng.chance() {
        s.init = [Init::Content, Init::Noise, Init::Style][rng.below(3) as usize].clone();
    }
    if rng.chance() {
        s.seed = rng.next();
    }
    if rng.chance() {
        s.loss_form = if rng.chance() {
            LossForm::Canonical
        } else {
            LossForm::Seed
        };
    }
    if rng.chance() {
        s.style_scale = rng.float(0.05, 8.0);
    }
    if rng.chance() {
        let n = 1 + rng.below(4) as usize;
        s.style_blend = (0..n).map(|_| rng.float(0.01, 10.0)).collect();
    }
    s.validate().unwrap();
    s
}

#[test]
fn share_links_round_trip_random_settings_exactly() {
    let mut rng = Rng(0x9E3779B97F4A7C15);
    for i in 0..3000 {
        let s = random_settings(&mut rng);
        let styles: Vec<(String, f32)> = (0..rng.below(4))
            .map(|k| {
                (
                    format!("https://example.org/p{k}/a%20b&c=d?q=1#frag"),
                    rng.float(0.0, 5.0) + 0.01,
                )
            })
            .collect();
        let frag = to_share_fragment(&s, &styles);
        assert!(
            frag.len() <= settings::MAX_FRAGMENT_BYTES,
            "{i}: {} bytes",
            frag.len()
        );
        let link = parse_share_fragment(&frag);
        assert!(link.warnings.is_empty(), "{i}: {frag}: {:?}", link.warnings);
        assert_eq!(link.settings, s, "{i}: {frag}");
        assert_eq!(link.style_urls, styles, "{i}: {frag}");
        assert_eq!(link.content_url, None);
        // The same with a leading '#'.
        assert_eq!(parse_share_fragment(&format!("#{frag}")).settings, s);
    }
}

#[test]
fn share_links_name_the_preset_and_only_the_differences() {
    let mut s = preset("seed").unwrap();
    assert_eq!(to_share_fragment(&s, &[]), "v=2&preset=seed");
    s.steps = 300;
    assert_eq!(to_share_fragment(&s, &[]), "v=2&preset=seed&steps=300");
    assert_eq!(to_share_fragment(&Settings::default(), &[]), "v=2");
    let mut d = Settings {
        optimizer: OptimizerChoice::Lbfgs,
        lr: 1.0,
        ..Settings::default()
    };
    // lr travels with a changed optimizer even when it is the optimizer's default.
    assert_eq!(to_share_fragment(&d, &[]), "v=2&optimizer=lbfgs&lr=1");
    d.style_layers = vec![lw("relu1_1", 0.5), lw("relu3_1", 1.0)];
    let frag = to_share_fragment(&d, &[("https://example.org/s.jpg".into(), 0.7)]);
    assert_eq!(
        frag,
        "v=2&optimizer=lbfgs&lr=1&style_layers=relu1_1:0.5,relu3_1&style=0.7:https://example.org/s.jpg"
    );
    let frag = to_share_fragment_with_content(&d, Some("http://x.org/c.png"), &[]);
    let link = parse_share_fragment(&frag);
    assert_eq!(link.content_url.as_deref(), Some("http://x.org/c.png"));
    assert_eq!(link.settings, d);
}

#[test]
fn links_from_before_coarse_to_fine_keep_their_meaning() {
    use stylize::settings::Scales;
    // A version 1 link (no v=) left out the options at the defaults of its day: one scale, 500 steps.
    let old = parse_share_fragment("#size=256&style_weight=200");
    assert!(old.warnings.is_empty(), "{:?}", old.warnings);
    assert_eq!((old.settings.size, old.settings.steps, old.settings.scales, old.settings.min_size), (256, 500, Scales::Off, 0));
    assert_eq!(old.settings.style_weight, 200.0);
    let old_default = parse_share_fragment("preset=default&scales=auto").settings;
    assert_eq!((old_default.steps, old_default.scales, old_default.min_size), (500, Scales::Auto, 0));
    // Presets other than the default are what they were.
    assert_eq!(parse_share_fragment("preset=neural-style").settings, preset("neural-style").unwrap());
    // Today's links say v=2 and mean today's defaults.
    let new = parse_share_fragment(&to_share_fragment(&Settings { size: 256, ..Settings::default() }, &[]));
    assert_eq!(new.settings, Settings { size: 256, ..Settings::default() });
    assert_eq!(parse_share_fragment("v=2").settings, Settings::default());
    // A bad version is reported and read as today's.
    let bad = parse_share_fragment("v=7&steps=3");
    assert_eq!(bad.warnings.len(), 1, "{:?}", bad.warnings);
    assert!(bad.warnings[0].contains("link version"), "{:?}", bad.warnings);
    assert_eq!((bad.settings.steps, bad.settings.scales), (3, Scales::Auto));
}

#[test]
fn share_links_leave_out_files_and_non_http_urls() {
    let s = Settings {
        init: Init::Path("/home/me/secret.png".into()),
        ..Settings::default()
    };
    assert_eq!(to_share_fragment(&s, &[]), "v=2");
    let styles = vec![
        ("blob:https://example.org/1234".to_string(), 1.0),
        ("data:image/png;base64,AAAA".to_string(), 1.0),
        ("https://ok.example/s.jpg".to_string(), 2.0),
    ];
    let frag = to_share_fragment(&Settings::default(), &styles);
    assert_eq!(frag, "v=2&style=2:https://ok.example/s.jpg");
}

#[test]
fn share_link_problems_are_reported_and_ignored() {
    let link = parse_share_fragment(
        "#preset=seed&steps=10&size=99999&lr=nan&colour=red&style_layers=relu9_9&init=/etc/passwd\
         &noequals&steps=20&style=javascript:alert(1)&style=0.5:https://a.org/x.jpg&content=data:text/html,<b>\
         &style=https://b.org/y.png&optimizer=%zz&seed=%FF%FE",
    );
    let s = &link.settings;
    let seed = preset("seed").unwrap();
    assert_eq!(s.steps, 10, "the first of two values is used");
    assert_eq!(
        (s.size, s.lr, &s.style_layers, &s.init),
        (seed.size, seed.lr, &seed.style_layers, &seed.init)
    );
    assert_eq!((s.optimizer, s.seed), (seed.optimizer, seed.seed));
    assert_eq!(
        link.style_urls,
        vec![
            ("https://a.org/x.jpg".to_string(), 0.5),
            ("https://b.org/y.png".to_string(), 1.0)
        ]
    );
    assert_eq!(link.content_url, None);
    let w = link.warnings.join("\n");
    for needle in [
        "size",
        "lr",
        "colour",
        "relu9_9",
        "init",
        "noequals",
        "twice",
        "javascript",
        "content",
        "bad %-escape",
        "not UTF-8",
    ] {
        assert!(w.contains(needle), "missing {needle:?} in:\n{w}");
    }
    assert_eq!(link.warnings.len(), 11, "{w}");
}

#[test]
fn share_links_refuse_script_and_odd_urls() {
    for url in [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:image/png;base64,AAAA",
        "blob:https://x.org/1",
        "file:///etc/passwd",
        "ftp://x.org/a.jpg",
        "//x.org/a.jpg",
        "https://",
        "https:///path",
        "http://x.org/a b.jpg",
        "http://x.org/\u{0}.jpg",
        "https://x.org/\n.jpg",
        " https://x.org/a.jpg",
        "vbscript:msgbox",
        "",
    ] {
        assert!(settings::check_url(url).is_err(), "{url:?}");
        let link = parse_share_fragment(&format!(
            "style={}&content={}",
            settings::percent_encode(url),
            settings::percent_encode(url)
        ));
        assert!(
            link.style_urls.is_empty() && link.content_url.is_none(),
            "{url:?}"
        );
        assert_eq!(link.warnings.len(), 2, "{url:?}: {:?}", link.warnings);
    }
    for url in [
        "http://x.org",
        "HTTPS://X.ORG/a.jpg?x=1&y=2",
        "https://user@x.org:8080/a%20b.jpg#f",
    ] {
        settings::check_url(url).unwrap();
        let link = parse_share_fragment(&format!("style={}", settings::percent_encode(url)));
        assert_eq!(
            link.style_urls,
            vec![(url.to_string(), 1.0)],
            "{:?}",
            link.warnings
        );
    }
    let long = format!("https://x.org/{}", "a".repeat(settings::MAX_URL_BYTES));
    assert!(settings::check_url(&long).is_err());
}

#[test]
fn hostile_fragments_never_panic_and_never_apply_bad_values() {
    let huge = "9".repeat(100_000);
    let inputs: Vec<String> = vec![
        String::new(),
        "#".into(),
        "?".into(),
        "&&&&".into(),
        "=".into(),
        "==&=x&y=".into(),
        "%".into(),
        "%%%%=%%%".into(),
        "size=%".into(),
        "size=%4".into(),
        "size=%G0".into(),
        "size=%C3%28".into(),
        format!("size={huge}"),
        format!("steps={huge}"),
        format!("seed={huge}"),
        format!("lr=1e{huge}"),
        format!("{huge}={huge}"),
        "a".repeat(100_000),
        format!("style={}", "https://x.org/".repeat(10_000)),
        "size=1e10&steps=-5&lr=-0&lr=inf&style_scale=1e-30&lbfgs_history=4294967296".into(),
        "size=NaN&content_weight=nan&style_weight=Infinity&tv_weight=-inf".into(),
        "size=٥١٢&steps=５&optimizer=ａｄａｍ&pooling=m%C3%A1x".into(),
        "preset=%F0%9F%98%80&init=%E2%80%AE&style_layers=relu1_1%00".into(),
        "style_blend=1,".into(),
        "content_layers=relu1_1:1e39".into(),
        "preset=seed&preset=fast".into(),
        "style=1:&style=:https://x.org/a&style=-1:https://x.org/a&style=nan:https://x.org/a".into(),
        "style=0:https://x.org/a&style=0:https://x.org/b".into(),
        (0..40)
            .map(|i| format!("style=https://x{i}.org/a"))
            .collect::<Vec<_>>()
            .join("&"),
        (0..800)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&"),
        "\u{feff}size=64".into(),
        "size=64\u{0}".into(),
        "size= 64".into(),
    ];
    for input in &inputs {
        let link = parse_share_fragment(input);
        link.settings
            .validate()
            .unwrap_or_else(|e| panic!("{:.60}: {e}", input));
        assert!(link.style_urls.len() <= settings::MAX_STYLES);
        for (url, w) in &link.style_urls {
            settings::check_url(url).unwrap();
            assert!(w.is_finite() && *w >= 0.0);
        }
        if !link.style_urls.is_empty() {
            assert!(link.style_urls.iter().map(|(_, w)| w).sum::<f32>() > 0.0);
        }
        assert!(
            link.warnings.len() <= 51,
            "{} warnings",
            link.warnings.len()
        );
        for w in &link.warnings {
            assert!(
                w.len() < 400,
                "a warning quotes too much: {} bytes",
                w.len()
            );
        }
    }
    // Spot checks.
    assert_eq!(
        parse_share_fragment("size=%20%2064").settings.size,
        64,
        "spaces around numbers are fine"
    );
    let link = parse_share_fragment("size=٥١٢");
    assert_eq!((link.settings.size, link.warnings.len()), (512, 1));
    let link = parse_share_fragment("style=0:https://x.org/a&style=0:https://x.org/b");
    assert_eq!(
        link.style_urls.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
        vec![1.0, 1.0]
    );
    let link = parse_share_fragment(&"a".repeat(100_000));
    assert_eq!(link.settings, Settings::default());
    assert_eq!(link.warnings.len(), 1);
    let link = parse_share_fragment(
        &(0..40)
            .map(|i| format!("style=https://x{i}.org/a"))
            .collect::<Vec<_>>()
            .join("&"),
    );
    assert_eq!(link.style_urls.len(), settings::MAX_STYLES);
}

#[test]
fn percent_coding_round_trips_any_text() {
    let texts = [
        "",
        "a b",
        "&=%#+?/:,@",
        "ünïcödé 😀",
        "\u{0}\u{1f}\u{7f}",
        "%41",
    ];
    for t in texts {
        let enc = settings::percent_encode(t);
        assert!(!enc.contains(['&', '=', '#', ' ', '+']), "{enc}");
        assert_eq!(settings::percent_decode(&enc).unwrap(), t);
    }
    assert_eq!(
        settings::percent_decode("1+1").unwrap(),
        "1+1",
        "'+' is not a space"
    );
    assert!(settings::percent_decode("%").is_err());
    assert!(settings::percent_decode("%2").is_err());
    assert!(settings::percent_decode("%+1").is_err());
    assert!(settings::percent_decode("%FF").is_err());
}

#[test]
fn float_text_is_short_and_exact() {
    for x in [
        0.02f32,
        0.003,
        1e6,
        1e-3,
        1.0,
        0.1,
        3.4028235e38,
        1e-45,
        f32::MIN_POSITIVE,
        123456.79,
        0.0,
    ] {
        let t = settings::fmt_float(x);
        assert_eq!(
            t.parse::<f32>().unwrap().to_bits(),
            x.to_bits(),
            "{x} -> {t}"
        );
        assert!(t.len() <= 15, "{t}");
    }
    assert_eq!(settings::fmt_float(1e6f32), "1e6");
    assert_eq!(settings::fmt_float(0.02f32), "0.02");
}

#[test]
fn minimum_image_sides_follow_the_deepest_layer() {
    use stylize::model::min_side_for;
    assert_eq!(min_side_for(["relu1_1", "relu1_2"]), 1);
    assert_eq!(min_side_for(["relu2_2"]), 2);
    assert_eq!(min_side_for(["relu1_1", "relu3_4"]), 4);
    assert_eq!(min_side_for(["relu4_2"]), 8);
    assert_eq!(min_side_for(["relu5_4", "relu1_1"]), 16);
    assert_eq!(min_side_for(["not_a_layer"]), 1);
}

#[test]
fn schedule_settings_parse_and_refuse_with_messages() {
    use stylize::settings::{Overrides, Scales};
    let mut o = Overrides::default();
    o.set("scales", "auto").unwrap();
    o.set("min_size", "0").unwrap();
    o.set("scale_steps", "250").unwrap();
    let s = Settings::resolve(None, &o).unwrap();
    assert_eq!((s.scales, s.min_size, s.scale_steps), (Scales::Auto, 0, 250));
    for (key, bad, needle) in [
        ("scales", "0", "from 1 to 12"),
        ("scales", "13", "from 1 to 12"),
        ("scales", "many", "off, auto"),
        ("min_size", "8", "0 (automatic) or a size from 16 to 8192"),
        ("min_size", "9000", "0 (automatic)"),
        ("scale_steps", "-1", "scale_steps"),
    ] {
        let e = Overrides::default().set(key, bad).unwrap_err();
        assert!(e.to_string().contains(needle), "{key}={bad}: {e}");
    }
    // Share links carry them.
    let s = Settings { scales: Scales::Count(4), min_size: 96, scale_steps: 30, ..Settings::default() };
    let link = stylize::settings::parse_share_fragment(&stylize::settings::to_share_fragment(&s, &[]));
    assert_eq!(link.settings, s, "{:?}", link.warnings);
}
