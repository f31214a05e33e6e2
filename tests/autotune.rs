//! The conv kernel autotuner: it picks the fastest of the timings it is given, its cache
//! round-trips, a stale or foreign cache is ignored, and on this GPU it times every variant of
//! every layer shape a plan needs.

mod common;

use std::sync::Arc;

use stylize::autotune::{conv_shapes, fastest, fingerprint, ConvKernelChoice, ConvOp, Timing, TuneKey, TuningCache};
use stylize::engine::Network;
use stylize::kernels::conv::{ConvShape, ConvVariant, Precision};
use stylize::plan::Plan;
use stylize::settings::Settings;

fn key(op: ConvOp, cin: u32, cout: u32, pixels_log2: u32) -> TuneKey {
    TuneKey { op, cin, cout, pixels_log2 }
}

fn timing(key: TuneKey, variant: &str, ms: f64) -> Timing {
    Timing { key, h: 8, w: 8, variant: variant.into(), ms }
}

#[test]
fn fastest_picks_the_least_time_per_key() {
    let (a, b) = (key(ConvOp::Forward, 64, 64, 12), key(ConvOp::BackwardInput, 64, 64, 12));
    let timings = [
        timing(a, "register-4x8", 3.0),
        timing(a, "workgroup-64x64", 2.5),
        timing(b, "register-4x8", 1.0),
        timing(b, "workgroup-64x64", 4.0),
        // ignored: a variant this engine does not have, and times that are not times
        timing(b, "winograd-2x2", 0.1),
        timing(b, "workgroup-64x64", f64::NAN),
        timing(b, "workgroup-64x64", -1.0),
        timing(b, "workgroup-64x64", 0.0),
        // a variant that failed on the GPU is stored with FAILED_MS
        timing(a, "register-4x8", stylize::autotune::FAILED_MS),
    ];
    let chosen = fastest(&timings);
    assert_eq!(chosen.len(), 2);
    assert_eq!(chosen[&a], ConvVariant::Workgroup64x64);
    assert_eq!(chosen[&b], ConvVariant::Register4x8);
    assert!(fastest(&[]).is_empty());
}

#[test]
fn keys_group_shapes_by_channels_and_pixel_count() {
    let shape = |h, w| ConvShape { h, w, cin: 64, cout: 128 };
    assert_eq!(TuneKey::of(ConvOp::Forward, shape(16, 16)).pixels_log2, 8);
    assert_eq!(TuneKey::of(ConvOp::Forward, shape(15, 17)), TuneKey::of(ConvOp::Forward, shape(16, 16)));
    assert_ne!(TuneKey::of(ConvOp::Forward, shape(17, 16)), TuneKey::of(ConvOp::Forward, shape(16, 16)));
    assert_ne!(TuneKey::of(ConvOp::Forward, shape(16, 16)), TuneKey::of(ConvOp::BackwardInput, shape(16, 16)));
    assert_eq!(TuneKey::of(ConvOp::Forward, shape(1, 1)).pixels_log2, 0);
}

#[test]
fn a_run_times_large_shapes_scaled_down() {
    use stylize::autotune::{timing_shape, TUNING_MAX_PIXELS};
    let shape = |h, w| ConvShape { h, w, cin: 64, cout: 64 };
    assert_eq!(timing_shape(shape(256, 256), TUNING_MAX_PIXELS), shape(256, 256));
    assert_eq!(timing_shape(shape(100, 30), TUNING_MAX_PIXELS), shape(100, 30));
    let small = timing_shape(shape(1024, 512), TUNING_MAX_PIXELS);
    assert!(small.h * small.w <= TUNING_MAX_PIXELS && small.h * small.w > TUNING_MAX_PIXELS * 9 / 10, "{small:?}");
    assert_eq!((small.cin, small.cout, small.h / small.w), (64, 64, 2));
    // a very thin map keeps at least one row
    let thin = timing_shape(shape(1, 1_000_000), TUNING_MAX_PIXELS);
    assert!(thin.h == 1 && thin.w <= TUNING_MAX_PIXELS, "{thin:?}");
}

#[test]
fn the_choice_parses_and_names_every_variant() {
    assert_eq!(ConvKernelChoice::parse("auto"), Ok(ConvKernelChoice::Auto));
    for v in ConvVariant::ALL {
        assert_eq!(ConvKernelChoice::parse(v.name()), Ok(ConvKernelChoice::Forced(v)));
        assert_eq!(ConvKernelChoice::Forced(v).name(), v.name());
    }
    let e = ConvKernelChoice::parse("fastest").unwrap_err();
    assert!(e.contains("auto, register-4x8, workgroup-64x64"), "{e}");
}

#[test]
fn the_cache_round_trips_and_a_stale_one_is_ignored() {
    let a = key(ConvOp::Forward, 3, 64, 10);
    let cache = TuningCache { fingerprint: "gpu A | kernels 1".into(), timings: vec![timing(a, "register-4x8", 1.25), timing(a, "workgroup-64x64", 0.5)] };
    let text = cache.to_json();
    assert_eq!(TuningCache::from_json(&text, "gpu A | kernels 1"), Some(cache.timings.clone()));
    // another GPU or driver, or other kernel sources
    assert_eq!(TuningCache::from_json(&text, "gpu A | kernels 2"), None);
    assert_eq!(TuningCache::from_json(&text, "gpu B | kernels 1"), None);
    // a file keeps several devices: a second one's timings do not replace the first's
    let other = TuningCache { fingerprint: "gpu B | kernels 1".into(), timings: vec![timing(a, "register-4x8", 9.0)] };
    let both = TuningCache::merged(Some(&text), other.clone());
    assert_eq!(TuningCache::from_json(&both, "gpu A | kernels 1"), Some(cache.timings.clone()));
    assert_eq!(TuningCache::from_json(&both, "gpu B | kernels 1"), Some(other.timings.clone()));
    let newer = TuningCache { fingerprint: "gpu A | kernels 1".into(), timings: vec![timing(a, "register-4x8", 0.75)] };
    let replaced = TuningCache::merged(Some(&both), newer.clone());
    assert_eq!(TuningCache::from_json(&replaced, "gpu A | kernels 1"), Some(newer.timings));
    assert_eq!(TuningCache::from_json(&replaced, "gpu B | kernels 1"), Some(other.timings));
    // damaged files
    assert_eq!(TuningCache::from_json(&text[..text.len() / 2], "gpu A | kernels 1"), None);
    assert_eq!(TuningCache::from_json("", "gpu A | kernels 1"), None);
    assert_eq!(TuningCache::from_json("{\"fingerprint\": 3}", "gpu A | kernels 1"), None);
}

#[test]
fn a_plans_shapes_cover_every_conv_both_ways_once() {
    let settings = Settings { size: 40, ..Settings::default() };
    let plan = Plan::for_images(&settings, (40, 30), &[(36, 36)], &[1.0], stylize::weights::REQUIRED_LAYERS).expect("plan");
    let shapes = conv_shapes(&plan.stack_maps());
    let keys: Vec<TuneKey> = shapes.iter().map(|(k, _)| *k).collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "a key is timed once");
    for (k, s) in &shapes {
        assert_eq!(TuneKey::of(k.op, *s), *k);
    }
    // Every conv of both stacks (the image's and the style's), from the layer table's output shapes.
    let mut expected = Vec::new();
    for &(h, w, depth) in &plan.stack_maps() {
        let outputs = stylize::model::output_shapes(h, w, depth);
        for (i, op) in stylize::model::VGG19[..depth].iter().enumerate() {
            if let stylize::model::LayerOp::Conv(c) = op {
                let (ih, iw) = if i == 0 { (h, w) } else { (outputs[i - 1].h, outputs[i - 1].w) };
                let shape = ConvShape { h: ih, w: iw, cin: c.cin, cout: c.cout };
                expected.extend([TuneKey::of(ConvOp::Forward, shape), TuneKey::of(ConvOp::BackwardInput, shape)]);
            }
        }
    }
    expected.sort();
    expected.dedup();
    assert_eq!(unique, expected);
    // e.g. conv1_1 at 40×30, and the deepest style conv (conv5_1 on the 40 px style image after 4 pools)
    assert!(keys.contains(&TuneKey::of(ConvOp::Forward, ConvShape { h: 30, w: 40, cin: 3, cout: 64 })));
    assert!(keys.contains(&TuneKey::of(ConvOp::Forward, ConvShape { h: 2, w: 2, cin: 512, cout: 512 })));
    // a tiled plan times its tiles' regions (both passes), not the whole image
    let big = Plan::for_images(&Settings { size: 800, ..Settings::default() }, (800, 600), &[(64, 64)], &[1.0], stylize::weights::REQUIRED_LAYERS)
        .expect("plan")
        .tiled(256)
        .expect("tiled");
    let maps = big.stack_maps();
    let grid = &big.tiling.as_ref().expect("tiled").grid;
    for t in &grid.tiles {
        for r in [t.values, t.grads] {
            assert!(maps.contains(&(r.h, r.w, big.stack.depth)), "{r:?} not in {maps:?}");
        }
    }
    assert!(!maps.contains(&(600, 800, big.stack.depth)), "{maps:?}");
}

/// On this GPU, through the cache file: a fresh cache directory is filled by timing every variant;
/// a valid cache is used without timing (here one that claims the workgroup variant is fastest,
/// which the engine then uses); a cache of other kernel sources is ignored and rewritten. The one
/// test in this binary that sets STYLIZE_CACHE_DIR.
#[test]
fn tuning_times_every_variant_and_uses_a_valid_cache_only() {
    let dir = common::temp_dir("autotune-cache");
    let file = dir.join(stylize::autotune::store::FILE_NAME);
    let _ = std::fs::remove_file(&file);
    std::env::set_var("STYLIZE_CACHE_DIR", &dir);
    let ctx = Arc::new(stylize::gpu::native_context().expect("a GPU adapter (lavapipe in CI)"));
    let weights = stylize::weights::Weights::from_source_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/weights-src")))
        .expect("weights");
    let settings = Settings { size: 32, ..Settings::default() };
    let plan = Plan::for_images(&settings, (32, 24), &[(32, 32)], &[1.0], weights.layers.len()).expect("plan");
    let shapes = conv_shapes(&plan.stack_maps());

    // 1. Nothing cached: every key timed, every variant, and written to the file.
    let net = Network::upload(&ctx, &weights).expect("upload");
    let mut told = None;
    let timed = pollster::block_on(net.tune_for(&plan, |n| told = Some(n)));
    assert_eq!(timed, shapes.len());
    assert_eq!(told, Some(shapes.len()));
    let text = std::fs::read_to_string(&file).expect("the cache file is written");
    let cached = TuningCache::from_json(&text, &fingerprint(&ctx, Precision::F32)).expect("a cache of this GPU and these kernels");
    assert_eq!(cached.len(), shapes.len() * ConvVariant::ALL.len());
    assert!(cached.iter().all(|t| t.ms.is_finite() && t.ms > 0.0), "{cached:?}");
    // timing again in the same process: nothing left to time
    assert_eq!(pollster::block_on(net.tune_for(&plan, |_| panic!("nothing to time"))), 0);

    // 2. A valid cache that says the workgroup variant wins everywhere: used as it is.
    let claimed: Vec<Timing> = cached
        .iter()
        .map(|t| Timing { ms: if t.variant == ConvVariant::Workgroup64x64.name() { 1e-3 } else { 1e3 }, ..t.clone() })
        .collect();
    std::fs::write(&file, TuningCache { fingerprint: fingerprint(&ctx, Precision::F32), timings: claimed }.to_json()).expect("write");
    let net = Network::upload(&ctx, &weights).expect("upload");
    assert_eq!(pollster::block_on(net.tune_for(&plan, |_| panic!("a valid cache needs no timing"))), 0);
    for (key, shape) in &shapes {
        assert_eq!(net.conv_variant(key.op, *shape), ConvVariant::Workgroup64x64);
    }

    // 3. The same claims under another kernel fingerprint: stale, timed again, file rewritten.
    let stale = text.replace("kernels ", "kernels stale-");
    assert_ne!(stale, text);
    std::fs::write(&file, &stale).expect("write");
    let net = Network::upload(&ctx, &weights).expect("upload");
    assert_eq!(pollster::block_on(net.tune_for(&plan, |_| ())), shapes.len());
    let rewritten = std::fs::read_to_string(&file).expect("cache");
    assert!(TuningCache::from_json(&rewritten, &fingerprint(&ctx, Precision::F32)).is_some(), "the stale cache is replaced");

    // 4. A forced variant times nothing and is used for every shape.
    let net = Network::upload(&ctx, &weights).expect("upload");
    net.set_conv_kernel(ConvKernelChoice::Forced(ConvVariant::Workgroup64x64));
    assert_eq!(pollster::block_on(net.tune_for(&plan, |_| panic!("forced: nothing to time"))), 0);
    assert_eq!(net.conv_variant(ConvOp::BackwardInput, shapes[0].1), ConvVariant::Workgroup64x64);

    // 5. The f16 kernels are other kernels: f32 timings are not theirs. They are timed and stored
    // beside the f32 ones, which stay.
    let f16_net = Network::upload_in(&ctx, &weights, Precision::F16).expect("the test GPU has shader-f16 (lavapipe does)");
    assert_eq!(pollster::block_on(f16_net.tune_for(&plan, |_| ())), shapes.len());
    let both = std::fs::read_to_string(&file).expect("cache");
    assert_ne!(fingerprint(&ctx, Precision::F16), fingerprint(&ctx, Precision::F32));
    let f16_timings = TuningCache::from_json(&both, &fingerprint(&ctx, Precision::F16)).expect("the f16 timings are cached");
    assert_eq!(f16_timings.len(), shapes.len() * ConvVariant::ALL.len());
    assert!(TuningCache::from_json(&both, &fingerprint(&ctx, Precision::F32)).is_some(), "the f32 timings are kept");
}
