//! One `step()` of the page's run: building the run when its inputs changed, going on to the next
//! scale of a coarse-to-fine schedule, and the colour mode after the last step.

use super::*;

pub(super) async fn step_inner(inner: &Rc<Inner>) -> Result<JsValue, JsValue> {
    let generation = inner.inputs.borrow().generation;
    let current = inner.run.borrow().as_ref().map(|(s, g)| (s.clone(), *g));
    let stylizer = match current {
        Some((s, built)) if built == generation && !inner.colour_applied.get() => next_scale(inner, s).await?,
        _ => {
            inner.colour_applied.set(false);
            let (net, plans, built) = inner.prepare()?;
            net.set_conv_kernel(inner.conv_kernel.get());
            // Free the old run's buffers before allocating the new ones.
            *inner.run.borrow_mut() = None;
            let prepared = inner.inputs_for(&plans[0], true)?;
            let stylizer = Stylizer::from_plan(inner.ctx.clone(), &net, &plans[0], &prepared).await.map_err(js_error)?;
            let stylizer = Rc::new(RefCell::new(stylizer));
            *inner.run.borrow_mut() = Some((stylizer.clone(), built));
            *inner.scales.borrow_mut() = Some((plans, 0));
            stylizer
        }
    };
    stylizer
        .try_borrow_mut()
        .map_err(|_| js_error("step(): the engine is busy reading back (await image() first)"))?
        .step();
    let losses = {
        let s = stylizer.try_borrow().map_err(|_| js_error("step(): the engine is busy"))?;
        s.losses().await.map_err(js_error)?
    };
    if let Some(e) = inner.ctx.take_error() {
        return Err(js_error(e));
    }
    stylizer
        .try_borrow_mut()
        .map_err(|_| js_error("step(): the engine is busy reading back (await image() first)"))?
        .check_finite(&losses)
        .map_err(js_error)?;
    inner.check_usable()?;
    // The colour mode applies once the last scale has taken its steps.
    let finished = inner.scales.borrow().as_ref().and_then(|(plans, i)| {
        let plan = &plans[*i];
        let done = stylizer.try_borrow().ok()?.steps_done();
        (*i + 1 == plans.len() && done == plan.settings.steps).then(|| plan.clone())
    });
    if let Some(plan) = finished {
        apply_colour(inner, &stylizer, &plan)?;
    }
    let (scale, scales) = inner.scales.borrow().as_ref().map_or((1, 1), |(plans, i)| (i + 1, plans.len()));
    let (width, height) = {
        let s = stylizer.try_borrow().map_err(|_| js_error("step(): the engine is busy"))?;
        (s.width(), s.height())
    };
    Ok(object(&[
        ("step", JsValue::from(losses.step)),
        ("scale", JsValue::from(scale as u32)),
        ("scales", JsValue::from(scales as u32)),
        ("width", JsValue::from(width)),
        ("height", JsValue::from(height)),
        ("content", JsValue::from(losses.content)),
        ("style", JsValue::from(losses.style)),
        ("tv", JsValue::from(losses.tv)),
        ("total", JsValue::from(losses.total)),
    ]))
}

/// Puts the photo's colours into the run's image when its colour mode keeps them (luma-swap,
/// luminance); once done, the run is over (`colour_applied`).
pub(super) fn apply_colour(inner: &Inner, stylizer: &Rc<RefCell<Stylizer>>, plan: &Plan) -> Result<(), JsValue> {
    if inner.colour_applied.get() || !plan.settings.colour.keeps_content_chroma() {
        return Ok(());
    }
    let s = stylizer.try_borrow().map_err(|_| js_error("the engine is busy"))?;
    let content = {
        let inputs = inner.inputs.borrow();
        let content = inputs.content.as_ref().ok_or_else(|| js_error("no content image"))?;
        crate::imageio::resize_to(content, s.width(), s.height())
    };
    let net = inner.inputs.borrow().net.clone().ok_or_else(|| js_error("load the weights first"))?;
    s.apply_colour(&net, &plan.settings, &content).map_err(js_error)?;
    inner.colour_applied.set(true);
    Ok(())
}

/// The running scale, or the next one once this one has taken its steps: the next scale starts from
/// this one's image, upsampled on the GPU, after this one's buffers are freed.
async fn next_scale(inner: &Rc<Inner>, current: Rc<RefCell<Stylizer>>) -> Result<Rc<RefCell<Stylizer>>, JsValue> {
    let next = {
        let scales = inner.scales.borrow();
        let Some((plans, index)) = scales.as_ref() else { return Ok(current) };
        let done = current.try_borrow().map_err(|_| js_error("step(): the engine is busy"))?.steps_done();
        if index + 1 >= plans.len() || done < plans[*index].settings.steps {
            return Ok(current);
        }
        (plans[index + 1].clone(), index + 1)
    };
    let (plan, index) = next;
    let built = inner.run.borrow().as_ref().map_or(0, |(_, g)| *g);
    *inner.run.borrow_mut() = None;
    let current = Rc::try_unwrap(current).map_err(|_| js_error("step(): the engine is busy"))?.into_inner();
    let previous = current.carry();
    let net = inner.inputs.borrow().net.clone().ok_or_else(|| js_error("load the weights first"))?;
    let prepared = inner.inputs_for(&plan, false)?;
    let stylizer = Stylizer::for_scale(inner.ctx.clone(), &net, &plan, &prepared, Some(previous)).await.map_err(js_error)?;
    let stylizer = Rc::new(RefCell::new(stylizer));
    *inner.run.borrow_mut() = Some((stylizer.clone(), built));
    if let Some((_, i)) = inner.scales.borrow_mut().as_mut() {
        *i = index;
    }
    Ok(stylizer)
}
