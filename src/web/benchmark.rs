//! The conv kernel choice as the page sees it: which variant is in force, the autotuner's progress
//! while it times this GPU, and the "benchmark this GPU" figures (the same table as `stylize bench`).

use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{js_error, object, Inner, StyleTransfer};
use crate::autotune::{self, ConvKernelChoice};
use crate::engine::Stylizer;
use crate::imageio::test_pattern;
use crate::kernels::conv::ConvVariant;
use crate::plan::Plan;
use crate::settings::Settings;

/// Steps timed per size after one warm-up step.
const TIMED_STEPS: u32 = 3;
/// The benchmark's sizes: at most this many, each at most this many px.
const MAX_SIZES: usize = 4;
const MAX_SIZE: u32 = 1024;

#[wasm_bindgen]
impl StyleTransfer {
    /// The conv kernel choice in force: `"auto"` or a variant's name (`configure({conv_kernel})`).
    #[wasm_bindgen(js_name = convKernel)]
    pub fn conv_kernel(&self) -> String {
        self.inner.conv_kernel.get().name().to_string()
    }

    /// Every accepted `conv_kernel` value: `"auto"`, then each variant's name.
    #[wasm_bindgen(js_name = convKernels)]
    pub fn conv_kernels() -> Array {
        ConvKernelChoice::names().into_iter().map(JsValue::from_str).collect()
    }

    /// `st.tuning()`: while the engine times its conv kernel variants on this GPU (once per GPU and
    /// layer shape, during the first step of a run; remembered in localStorage), `{done, total,
    /// text}`; else null. It can be called while `step()` is pending.
    pub fn tuning(&self) -> JsValue {
        let net = self.inner.inputs.try_borrow().ok().and_then(|i| i.net.clone());
        let progress = net.and_then(|n| n.tuning.lock().ok().and_then(|t| t.progress));
        let Some((done, total)) = progress else { return JsValue::NULL };
        object(&[
            ("done", JsValue::from(done as u32)),
            ("total", JsValue::from(total as u32)),
            ("text", JsValue::from_str(&format!("tuning for this GPU… {done} of {total} layer shapes"))),
        ])
    }

    /// `await st.benchmark([256, 512])`: times every conv kernel variant on every layer shape of a
    /// square run at each size (the autotuner's timings, which it then keeps), then the whole step at
    /// each size with the chosen kernels. Ends the current run (the GPU's memory is needed). Resolves
    /// to `{text, variants, layers: [{op, map, channels, cells, chosen}], steps: [{size, ms}]}`, `text`
    /// being the figures as markdown, to paste into a report.
    pub fn benchmark(&self, sizes: Vec<u32>) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner.check_usable()?;
            if inner.stepping.replace(true) {
                return Err(js_error("benchmark(): a step is running: await it (or pause) first"));
            }
            let result = run(&inner, &sizes).await;
            inner.stepping.set(false);
            result
        })
    }
}

async fn run(inner: &Rc<Inner>, sizes: &[u32]) -> Result<JsValue, JsValue> {
    if sizes.is_empty() || sizes.len() > MAX_SIZES || sizes.iter().any(|s| !(16..=MAX_SIZE).contains(s)) {
        return Err(js_error(format!("benchmark(sizes): 1 to {MAX_SIZES} sizes of 16 to {MAX_SIZE} px, got {sizes:?}")));
    }
    let net = inner.inputs.borrow().net.clone().ok_or_else(|| js_error("load the weights first: await st.loadWeights(bytes)"))?;
    let ctx = inner.ctx.clone();
    // The run's buffers go first: the benchmark allocates a run of its own at each size.
    *inner.run.borrow_mut() = None;
    *inner.scales.borrow_mut() = None;
    inner.changed();
    let settings = Settings::default();
    let budget = inner.budget();
    let mut plans = Vec::new();
    for &size in sizes {
        let plan = Plan::at_sizes(&settings, (size, size), &[(size, size)], &[1.0], net.convs.len()).map_err(js_error)?.weights_in(net.precision());
        plan.check(&budget).map_err(|e| js_error(format!("{size} px: {e}")))?;
        plans.push(plan);
    }
    let mut timings = Vec::new();
    for plan in &plans {
        for (key, shape) in autotune::conv_shapes(&plan.stack_maps()) {
            timings.extend(autotune::time_variants(&ctx, &net.kernels.conv, key, shape).await);
            inner.check_usable()?;
        }
    }
    net.tuning.lock().unwrap_or_else(|p| p.into_inner()).adopt(&ctx, timings.clone());
    net.set_conv_kernel(ConvKernelChoice::Auto);

    let mut steps = Vec::new();
    for plan in &plans {
        let size = plan.width;
        let (content, style) = (test_pattern(size, 0.0), test_pattern(size, 1.3));
        let inputs = plan.prepare(&content, &[&style], None).map_err(js_error)?;
        let mut st = Stylizer::from_plan(ctx.clone(), &net, plan, &inputs).await.map_err(js_error)?;
        steps.push((size, st.ms_per_step(TIMED_STEPS).await));
        if let Some(e) = ctx.take_error() {
            return Err(js_error(e));
        }
        inner.check_usable()?;
    }

    let date: String = String::from(js_sys::Date::new_0().to_iso_string()).chars().take(10).collect();
    let mut text = format!(
        "Benchmark of {} ({date}), default settings, weights in {}, conv kernels chosen by the autotuner.\n\n",
        ctx.describe(),
        net.precision().name()
    );
    text.push_str("| size | ms/step |\n|---|---|\n");
    for (size, ms) in &steps {
        text.push_str(&format!("| {size} | {ms:.1} |\n"));
    }
    text.push_str(&format!("\nConv kernel variants per layer shape (ms per dispatch by {}, GFLOP/s in brackets):\n\n", autotune::timer(&ctx)));
    text.push_str(&autotune::variants_table(&timings));

    let chosen = autotune::fastest(&timings);
    let layers: Array = autotune::by_key(&timings)
        .into_iter()
        .map(|(key, of_key)| {
            let cells: Array = ConvVariant::ALL
                .iter()
                .map(|v| of_key.iter().find(|t| t.variant == v.name()).map_or(JsValue::NULL, |t| object(&[("ms", t.ms.into()), ("gflops", t.gflops().into())])))
                .collect();
            object(&[
                ("op", JsValue::from_str(key.op.name())),
                ("map", JsValue::from_str(&format!("{}×{}", of_key[0].h, of_key[0].w))),
                ("channels", JsValue::from_str(&format!("{}→{}", key.cin, key.cout))),
                ("cells", cells.into()),
                ("chosen", JsValue::from_str(chosen.get(&key).map_or("-", |v| v.name()))),
            ])
        })
        .collect();
    let variants: Array = ConvVariant::ALL.iter().map(|v| JsValue::from_str(v.name())).collect();
    let steps: Array = steps.iter().map(|(size, ms)| object(&[("size", JsValue::from(*size)), ("ms", JsValue::from(*ms))])).collect();
    Ok(object(&[("text", JsValue::from_str(&text)), ("variants", variants.into()), ("layers", layers.into()), ("steps", steps.into())]))
}
